/**
 * The `remote` driver's calls against libvirt's own C client, on one real libvirtd 9.0 (test driver,
 * default `libvirtd.conf` limits: `max_client_requests = 5`, `max_workers = 20`) started for the run:
 * 1. 2,000 sequential `domains.get("test")` + `info()` on `test+unix:///default` (two DOMAIN_GET_INFO
 *    calls each: `get` checks that the domain exists), against python3-libvirt's `lookupByName("test")`
 *    + `info()` (LOOKUP_BY_NAME and GET_INFO) on the same daemon, its connection open and warmed up in a
 *    child process, as ours is in a worker thread;
 * 2. the same 2,000 from 16 concurrent callers on one virtkit connection, against the sequential figure
 *    of the same round; beside it, python3-libvirt's 16 threads on one connection against its own
 *    sequential figure: what libvirt's client gets from the same daemon.
 *
 * Each round (`BENCH_REMOTE_ROUNDS`, default 7) times the 2,000 calls of each of the four loops in
 * blocks of 250 (`BENCH_REMOTE_BLOCKS`, default 8), the four loops taking turns block by block, the
 * order reversed every other block: the load of the other work on the machine comes in bursts of
 * seconds, and a loop timed whole (0.2-2 s) ran in a different burst than the loop it is compared with
 * (one whole-loop run here: sequential 213-1668 ms). The concurrent callers take calls from one
 * shared count, so the block's last calls run with fewer than 16 in flight: against us. Reported per
 * round (the blocks summed): every run, medians, best runs, the ratio within each round with its
 * median and how many rounds meet the target, and the load average. CPU time per get + info of the
 * client and of the daemon (all its threads, from /proc/PID/task/*\/schedstat) is printed for the
 * sequential and the concurrent loop: the ratio of those totals is roughly what is left of the
 * concurrent gain when no CPU is idle (the sequential loop also waits for every hand-over to be
 * scheduled, which a loaded machine makes longer), whatever the client does.
 *
 * virtkit runs from the built `dist/` (what users run; tsx's transform adds a `__name` call to every
 * function it creates, and costs ~15% more client CPU per call) when it is newer than every source
 * under core/ and drivers/ (`npx tsc -p tsconfig.build.json`), else from the sources, and says which.
 * Its sequential and its concurrent loop each run in a worker thread of their own with their own
 * connection, as python3-libvirt's run on its main thread and on 16 threads.
 *
 * `BENCH_REMOTE_LIBVIRTD_CONF` adds `libvirtd.conf` lines (separated by `;`), e.g.
 * `max_client_requests = 16` (libvirtd serves 5 calls of one connection at a time by default and leaves
 * the rest unread in the socket): a setting a user with a busy connection would change. The default is
 * the stock configuration.
 *
 * Needs libvirtd, virsh, setpriv and /usr/bin/python3 with the libvirt module; prints a note without
 * them. The volume download lives in `remote_download.bench.ts`.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { libvirtdMissing, startLibvirtd } from "../test/_support/libvirtd.ts";

const CALLS = 2000;
const ROUNDS = Number(process.env.BENCH_REMOTE_ROUNDS ?? 7);
const BLOCKS = Number(process.env.BENCH_REMOTE_BLOCKS ?? 8);
const CONCURRENCY = 16;
const LIBVIRTD_CONF = (process.env.BENCH_REMOTE_LIBVIRTD_CONF ?? "").split(";").map((line) => line.trim()).filter(Boolean);
const ROOT = resolve(import.meta.dirname ?? ".", "..");

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[], digits = 0) => xs.map((x) => x.toFixed(digits)).join(", ");
const min = (xs: number[]) => Math.min(...xs);
const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

/**
 * The python3-libvirt side: one connection, warmed up; each stdin line `seq N` or `conc N` makes N
 * calls, in one thread or from the threads taking them from one shared count, and prints the wall time
 * and the process's CPU time (user + system, all threads), in ms. The module releases the GIL inside
 * libvirt calls, so the threads overlap on the connection as libvirt's client allows.
 */
const PYTHON = `
import concurrent.futures, libvirt, resource, sys, time
conn = libvirt.open(sys.argv[1])
calls, concurrency = int(sys.argv[2]), int(sys.argv[3])
def loop(count):
    for _ in count:
        conn.lookupByName("test").info()
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return (r.ru_utime + r.ru_stime) * 1000
loop(range(calls))
# Threads started once (the warm-up makes all 16): starting them per block would be timed too.
pool = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency)
list(pool.map(lambda _: loop(range(calls // concurrency)), range(concurrency)))
print("ready", flush=True)
for line in sys.stdin:
    what, n = line.split()
    # One iterator for all threads: next() on it is atomic under the GIL.
    count = iter(range(int(n)))
    c0, t0 = cpu(), time.perf_counter()
    if what == "seq":
        loop(count)
    else:
        list(pool.map(lambda _: loop(count), range(concurrency)))
    print((time.perf_counter() - t0) * 1000, cpu() - c0, flush=True)
pool.shutdown()
conn.close()
`;

/** Nanoseconds all threads of `pid` spent on a CPU (schedstat's first field). */
function threadsCpuNs(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // The thread ended meanwhile (libvirtd's worker pool shrinks and grows).
    }
  }
  return ns;
}

/** The newest modification time (ms) of the `.ts` files under `dir`. */
function newestSourceMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMs(path));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** virtkit's entry module: dist/ when it is up to date, else the sources; and which it is. */
function virtkitModule(): { url: string; from: string } {
  const dist = join(ROOT, "dist", "mod.js");
  const sourcesMs = Math.max(statSync(join(ROOT, "mod.ts")).mtimeMs, newestSourceMs(join(ROOT, "core")), newestSourceMs(join(ROOT, "drivers")));
  if (existsSync(dist) && statSync(dist).mtimeMs >= sourcesMs) return { url: pathToFileURL(dist).href, from: "dist/" };
  return { url: pathToFileURL(join(ROOT, "mod.ts")).href, from: "the sources through tsx (dist/ is missing or older than them)" };
}

/**
 * One virtkit side in a worker thread of its own, as python3-libvirt's sequential loop has its main
 * thread and its concurrent one 16 threads: the scheduler then judges each loop by its own past, not
 * the sequential loop by the CPU the concurrent one just used on the same thread (on a loaded machine
 * that delayed every wake-up of the following sequential block). It opens one connection, warms it up
 * (the first thousand calls run unoptimised code) and answers each `calls` message with the wall time,
 * in ms, of that many get + info from `concurrency` callers taking them from one shared count.
 */
const WORKER = `
import { parentPort, workerData } from "node:worker_threads";
const { connect } = await import(workerData.module);
const conn = await connect(workerData.uri);
const oneCall = async () => (await conn.domains.get("test")).info();
const loop = async (calls) => {
  let left = calls;
  await Promise.all(Array.from({ length: workerData.concurrency }, async () => {
    while (left-- > 0) await oneCall();
  }));
};
await loop(workerData.warmUp);
parentPort.on("message", async (calls) => {
  if (calls === 0) {
    await conn.close();
    return parentPort.close();
  }
  const t0 = performance.now();
  await loop(calls);
  parentPort.postMessage(performance.now() - t0);
});
parentPort.postMessage("ready");
`;

/** A started worker of {@linkcode WORKER}: `run(calls)` resolves with the wall time in ms. */
async function virtkitWorker(module: string, uri: string, concurrency: number): Promise<{ run(calls: number): Promise<number>; close(): Promise<void> }> {
  const worker = new Worker(WORKER, { eval: true, workerData: { module, uri, concurrency, warmUp: 2 * CALLS } });
  const next = () => new Promise<unknown>((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    worker.once("error", onError);
    worker.once("message", (value) => {
      worker.off("error", onError);
      resolve(value);
    });
  });
  if ((await next()) !== "ready") throw new Error("the virtkit worker did not start");
  return {
    run: async (calls) => {
      const answer = next();
      worker.postMessage(calls);
      return (await answer) as number;
    },
    // Closes its connection; a worker that does not end within 5 s is terminated.
    close: async () => {
      const exited = new Promise((resolve) => worker.once("exit", resolve));
      worker.postMessage(0);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise((resolve) => (timer = setTimeout(resolve, 5000, "late")));
      if ((await Promise.race([exited, late])) === "late") await worker.terminate();
      clearTimeout(timer);
    },
  };
}

/** One timed loop: wall time, client CPU and daemon CPU, in ms. */
interface Sample {
  wallMs: number;
  clientCpuMs: number;
  daemonCpuMs: number;
}

/** Runs the suite. */
export async function run(): Promise<void> {
  if (libvirtdMissing.length > 0 || !existsSync("/usr/bin/python3")) {
    console.log(`skipped: needs ${[...libvirtdMissing, "/usr/bin/python3"].join(", ")}`);
    return;
  }
  const { url, from } = virtkitModule();
  console.log(`virtkit from ${from}; libvirtd.conf ${LIBVIRTD_CONF.length > 0 ? `with ${LIBVIRTD_CONF.join(", ")}` : "stock (max_client_requests 5, max_workers 20)"}`);
  const daemon = await startLibvirtd({ driver: "test", extraConfig: LIBVIRTD_CONF });
  const python = spawn("/usr/bin/python3", ["-c", PYTHON, `test+unix:///default?socket=${daemon.socketPath}`, String(CALLS), String(CONCURRENCY)], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: python.stdout! })[Symbol.asyncIterator]();
  const nextLine = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`python3-libvirt exited (${python.exitCode})`);
    return value as string;
  };
  const workers: Awaited<ReturnType<typeof virtkitWorker>>[] = [];
  try {
    const sequential = await virtkitWorker(url, daemon.uri("test"), 1);
    workers.push(sequential);
    const concurrent = await virtkitWorker(url, daemon.uri("test"), CONCURRENCY);
    workers.push(concurrent);
    const measure = async (body: () => Promise<number | undefined>): Promise<Sample> => {
      const d0 = threadsCpuNs(daemon.pid);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const childCpuMs = await body();
      const wallMs = performance.now() - t0;
      const used = process.cpuUsage(c0);
      return { wallMs, clientCpuMs: childCpuMs ?? (used.user + used.system) / 1000, daemonCpuMs: (threadsCpuNs(daemon.pid) - d0) / 1e6 };
    };
    // Each side's own timing of its loop (no message round trip in it); CPU is read around it: this
    // process's (its threads but the worker wait) or python's, and the daemon's.
    const virtkitLoop = async (worker: typeof sequential, calls: number): Promise<Sample> => {
      let wallMs = 0;
      const sample = await measure(async () => {
        wallMs = await worker.run(calls);
        return undefined;
      });
      return { ...sample, wallMs };
    };
    const pythonLoop = async (what: string, calls: number): Promise<Sample> => {
      let wallMs = 0;
      const sample = await measure(async () => {
        python.stdin!.write(`${what} ${calls}\n`);
        const [ms, cpuMs] = (await nextLine()).trim().split(" ").map(Number);
        wallMs = ms!;
        return cpuMs!;
      });
      return { ...sample, wallMs };
    };
    const loops: Record<"ours" | "python" | "concurrent" | "pythonConcurrent", (calls: number) => Promise<Sample>> = {
      ours: (calls) => virtkitLoop(sequential, calls),
      concurrent: (calls) => virtkitLoop(concurrent, calls),
      python: (calls) => pythonLoop("seq", calls),
      pythonConcurrent: (calls) => pythonLoop("conc", calls),
    };
    if ((await nextLine()).trim() !== "ready") throw new Error("python3-libvirt did not start");
    const results: Record<keyof typeof loops, Sample[]> = { ours: [], python: [], concurrent: [], pythonConcurrent: [] };
    const loadBefore = loadavg();
    const loads: string[] = [];
    const order = Object.keys(loops) as (keyof typeof loops)[];
    const blockCalls = Math.ceil(CALLS / BLOCKS);
    for (let round = 0; round < ROUNDS; round++) {
      const sums = Object.fromEntries(order.map((name) => [name, { wallMs: 0, clientCpuMs: 0, daemonCpuMs: 0 }])) as Record<keyof typeof loops, Sample>;
      for (let block = 0, done = 0; done < CALLS; block++, done += blockCalls) {
        for (const name of block % 2 === 0 ? order : [...order].reverse()) {
          const sample = await loops[name](Math.min(blockCalls, CALLS - done));
          sums[name].wallMs += sample.wallMs;
          sums[name].clientCpuMs += sample.clientCpuMs;
          sums[name].daemonCpuMs += sample.daemonCpuMs;
        }
      }
      for (const name of order) results[name].push(sums[name]);
      loads.push(readFileSync("/proc/loadavg", "utf8").split(" ")[0]!);
    }
    python.stdin!.end();
    report(results, loadBefore, loads);
  } finally {
    for (const worker of workers) await worker.close().catch(() => {});
    if (python.exitCode === null) python.kill();
    await daemon.stop();
  }
}

function report(results: Record<"ours" | "python" | "concurrent" | "pythonConcurrent", Sample[]>, loadBefore: string, loads: string[]): void {
  const wall = (name: keyof typeof results) => results[name].map((s) => s.wallMs);
  const [ours, python, concurrent, pythonConcurrent] = [wall("ours"), wall("python"), wall("concurrent"), wall("pythonConcurrent")];
  const perRound = (a: number[], b: number[]) => a.map((x, i) => x / b[i]!);
  const line = (label: string, xs: number[]) => `${label}: ${median(xs).toFixed(0)} ms median, ${min(xs).toFixed(0)} best [${fmt(xs)}]`;
  const ratios = (label: string, xs: number[], target: string, met: (x: number) => boolean) =>
    `  ${label} per round: [${fmt(xs, 2)}]; median ${median(xs).toFixed(2)}x, ${xs.filter(met).length} of ${xs.length} rounds ${target}`;
  console.log(line(`${CALLS} sequential get("test") + info(), virtkit`, ours));
  console.log(line(`${CALLS} sequential lookupByName + info(), python3-libvirt`, python));
  console.log(ratios("time virtkit / python3-libvirt", perRound(ours, python), "<= 1.0x", (x) => x <= 1));
  console.log(`  ratio of medians ${(median(ours) / median(python)).toFixed(2)}x, of best runs ${(min(ours) / min(python)).toFixed(2)}x (target <= 1.0x)`);
  console.log(line(`${CALLS} from ${CONCURRENCY} concurrent callers on one connection, virtkit`, concurrent));
  const throughput = perRound(ours, concurrent);
  console.log(ratios("throughput concurrent / sequential", throughput, ">= 2x", (x) => x >= 2));
  console.log(`  ratio of medians ${(median(ours) / median(concurrent)).toFixed(2)}x, of best runs ${(min(ours) / min(concurrent)).toFixed(2)}x (target >= 2x)`);
  console.log(line(`reference: ${CALLS} from ${CONCURRENCY} threads on one connection, python3-libvirt`, pythonConcurrent));
  console.log(ratios("python3-libvirt throughput threads / sequential", perRound(python, pythonConcurrent), ">= 2x", (x) => x >= 2));
  // CPU per iteration (us): what the gain comes down to when no CPU is idle.
  const cpu = (name: keyof typeof results, of: "clientCpuMs" | "daemonCpuMs") => (median(results[name].map((s) => s[of])) * 1000) / CALLS;
  const both = (name: keyof typeof results) => (median(results[name].map((s) => s.clientCpuMs + s.daemonCpuMs)) * 1000) / CALLS;
  for (const [label, seq, conc] of [["virtkit", "ours", "concurrent"], ["python3-libvirt", "python", "pythonConcurrent"]] as const) {
    console.log(`  CPU per get + info (medians), ${label}: sequential client ${cpu(seq, "clientCpuMs").toFixed(1)} us + libvirtd ${cpu(seq, "daemonCpuMs").toFixed(1)} us, ` +
      `concurrent client ${cpu(conc, "clientCpuMs").toFixed(1)} us + libvirtd ${cpu(conc, "daemonCpuMs").toFixed(1)} us; ` +
      `ratio of the totals ${(both(seq) / both(conc)).toFixed(2)}x (about the gain left when no CPU is idle)`);
  }
  console.log(`  load average before ${loadBefore}, after each round [${loads.join(", ")}]`);
}
