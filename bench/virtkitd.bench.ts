/**
 * virtkitd against Debian's libvirtd 9.0 (its test driver), side by side in one run:
 * 1. 50 concurrent python3-libvirt clients (threads of one Python process, one connection each, a
 *    lifecycle callback registered on each), each looping list + lookup + info + block job info for
 *    BENCH_DAEMON_SECONDS (default 60) per round, BENCH_DAEMON_ROUNDS (default 3) rounds each,
 *    interleaved, after a warm-up of BENCH_DAEMON_WARMUP_SECONDS (default 5, not counted): iterations
 *    per second, p50/p99 latency of one
 *    iteration, the daemon's CPU per iteration (all threads, user + system: a figure that does not move
 *    with the machine's load the way latency does), its RSS at the start and end of the round, and for
 *    virtkitd the V8 heap after a full GC at both ends (flat heap = no leak; RSS also holds V8's grown
 *    young generation and compiled code), and what a probe inside virtkitd saw in the round
 *    (`_loop_probe.ts`: event loop delay, busy share, GC pauses by kind: where a tail comes from).
 *    BENCH_DAEMON_BASELINE=path/to/dist/cli/virtkitd.js adds another build of virtkitd (say, main's)
 *    as a third target in every round, so a change is measured against its baseline in the same run.
 *    libvirtd's test driver has no block jobs: its block job info
 *    answers VIR_ERR_NO_SUPPORT, counted apart from errors (the round trip is made all the same).
 * 2. `virsh list --all` with 100 domains defined: wall time, median of BENCH_DAEMON_LIST_RUNS (default 9)
 *    runs each, interleaved, and the daemon CPU per run; after BENCH_DAEMON_LIST_WARMUP_RUNS (default 20)
 *    runs, reported apart: the load above does not exercise virsh's procedures (DOMAIN_GET_STATE, a
 *    101-domain CONNECT_LIST_ALL_DOMAINS), and V8 was seen compiling them for the first ~20 runs, at
 *    ~3x the daemon CPU of a warm run (half of it on V8's compiler threads).
 * 3. A client that stops reading while lifecycle events flow (another client suspends and resumes as
 *    fast as it can): virtkitd's RSS over the run (a fresh daemon: V8's warm-up shows in it), its heap
 *    after GC at both ends, and whether it cut the client off.
 * The last lines put the ratios side by side. virtkitd runs as its package bin (`dist/cli/virtkitd.js`,
 * built first when older than the sources), as users run it: tsx's transform would add its own cost to
 * every call. Shorter rounds for local iterations: `BENCH_DAEMON_SECONDS=10 npm run bench -- virtkitd`.
 *
 * Needs libvirtd, virsh, setpriv and /usr/bin/python3 with the libvirt module; prints a note without them.
 *
 * @module
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { libvirtdMissing, startLibvirtd } from "../test/_support/libvirtd.ts";
import { builtVirtkitd, heapAfterGcBytes, loadAverage, processCpuMs, rssKiB } from "./_daemon_probe.ts";
import { formatLoopProbe, loopProbeArgs, readLoopProbe } from "./_loop_probe.ts";

const CLIENTS = 50;
const SECONDS = Number(process.env.BENCH_DAEMON_SECONDS ?? 60);
const ROUNDS = Number(process.env.BENCH_DAEMON_ROUNDS ?? 3);
const BASELINE = process.env.BENCH_DAEMON_BASELINE;
/** Extra node options of virtkitd and of the baseline (`--max-semi-space-size=32`...), to measure V8 flags side by side. */
const NODE_FLAGS = (process.env.BENCH_DAEMON_NODE_FLAGS ?? "").split(" ").filter(Boolean);
const BASELINE_NODE_FLAGS = (process.env.BENCH_DAEMON_BASELINE_NODE_FLAGS ?? "").split(" ").filter(Boolean);
/** 0 skips part 2 (`virsh list --all`), and BENCH_DAEMON_STALLED_SECONDS=0 part 3, while iterating on part 1. */
const STALLED_SECONDS = Number(process.env.BENCH_DAEMON_STALLED_SECONDS ?? Math.min(SECONDS, 30));
const WARMUP_SECONDS = Number(process.env.BENCH_DAEMON_WARMUP_SECONDS ?? 5);
const LIST_RUNS = Number(process.env.BENCH_DAEMON_LIST_RUNS ?? 9);
const LIST_WARMUP_RUNS = Number(process.env.BENCH_DAEMON_LIST_WARMUP_RUNS ?? 20);
const ROOT = new URL("..", import.meta.url).pathname;

const LOAD = `
import libvirt, sys, threading, time, json
libvirt.registerErrorHandler(lambda ctx, err: None, None)
libvirt.virEventRegisterDefaultImpl()
threading.Thread(target=lambda: [libvirt.virEventRunDefaultImpl() for _ in iter(int, 1)], daemon=True).start()
uri, n, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
conns = [libvirt.open(uri) for _ in range(n)]
for c in conns: c.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lambda *a: None, None)
lat = [[] for _ in range(n)]; errors = [0] * n; unsupported = [0] * n
barrier = threading.Barrier(n + 1)
def work(i):
    c = conns[i]; barrier.wait(); end = time.perf_counter() + secs
    while True:
        t0 = time.perf_counter()
        if t0 >= end: break
        try:
            c.listAllDomains(0); d = c.lookupByName("test"); d.info()
            try: d.blockJobInfo("vda", 0)
            except libvirt.libvirtError as e:
                if e.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT: raise
                unsupported[i] += 1
        except Exception: errors[i] += 1
        lat[i].append(time.perf_counter() - t0)
threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
for t in threads: t.start()
barrier.wait(); t0 = time.perf_counter()
for t in threads: t.join()
elapsed = time.perf_counter() - t0
xs = sorted(x for l in lat for x in l)
print(json.dumps({"iterations": len(xs), "elapsed": elapsed, "p50": xs[len(xs) // 2] * 1000, "p99": xs[int(len(xs) * 0.99)] * 1000, "errors": sum(errors), "unsupported": sum(unsupported)}))
`;

const DEFINE_100 = `
import libvirt, sys
c = libvirt.open(sys.argv[1])
for i in range(100):
    c.defineXML("<domain type='test'><name>bench%03d</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>" % i)
print(len(c.listAllDomains(0)))
`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function python(code: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile("/usr/bin/python3", ["-c", code, ...args], { maxBuffer: 1 << 24, timeout: (SECONDS + 120) * 1000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${error.message}: ${stderr}`)) : resolve(stdout.trim()))
  );
}

/** A running virtkitd: its process, URI, stderr so far, and where its heap snapshots go. */
interface Virtkitd {
  readonly child: ChildProcess;
  readonly uri: string;
  readonly log: () => string;
  readonly snapshotDir: string;
}

/**
 * Starts a built virtkitd bin with node (its PID is the daemon's own, for CPU and RSS), with the loop
 * probe loaded and an IPC channel to read it.
 */
async function startVirtkitd(dir: string, extra: string[] = [], bin = builtVirtkitd(ROOT), nodeFlags = NODE_FLAGS): Promise<Virtkitd> {
  mkdirSync(dir, { recursive: true });
  const socket = join(dir, "virtkitd.sock");
  const snapshotDir = join(dir, "snapshots");
  mkdirSync(snapshotDir, { recursive: true });
  const child = spawn(
    process.execPath,
    [...nodeFlags, "--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${snapshotDir}`, ...loopProbeArgs(dir), bin, "--listen", `unix:${socket}`, ...extra],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe", "ipc"] },
  );
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  const deadline = Date.now() + 30_000;
  while (!out.includes("ready on")) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`virtkitd did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { child, uri: `test+unix:///default?socket=${socket}`, log: () => err, snapshotDir };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

/** A daemon under test: its name, URI, PID, and how to read its heap after GC (virtkitd only). */
interface Target {
  readonly name: string;
  readonly uri: string;
  readonly pid: number;
  readonly heapBytes?: () => Promise<number>;
  /** The loop probe's line for the round just ended (virtkitd only). */
  readonly probe?: () => Promise<string>;
}

/** One measured round. */
interface Round {
  readonly p50: number;
  readonly p99: number;
  readonly iterationsPerSecond: number;
  readonly cpuUsPerIteration: number;
}

const mib = (kib: number) => (kib / 1024).toFixed(1);

async function load(target: Target, seconds: number): Promise<Round> {
  // The snapshot before the RSS reading, and after it at the end: a heap snapshot costs the process
  // memory of its own (once, about 40 MiB), which must not show up as growth within the round.
  const heapBefore = await target.heapBytes?.();
  await target.probe?.(); // starts the probe's figures over: the round's own, not the other target's
  const rssBefore = rssKiB(target.pid);
  const cpuBefore = processCpuMs(target.pid);
  const r = JSON.parse(await python(LOAD, [target.uri, String(CLIENTS), String(seconds)])) as Record<string, number>;
  const cpuUsPerIteration = ((processCpuMs(target.pid) - cpuBefore) * 1000) / r.iterations!;
  const rssAfter = rssKiB(target.pid);
  const probe = await target.probe?.();
  const heapAfter = await target.heapBytes?.();
  const heap = heapBefore === undefined || heapAfter === undefined
    ? ""
    : `, heap after GC ${(heapBefore / 1048576).toFixed(1)} -> ${(heapAfter / 1048576).toFixed(1)} MiB`;
  const round = { p50: r.p50!, p99: r.p99!, iterationsPerSecond: r.iterations! / r.elapsed!, cpuUsPerIteration };
  console.log(
    `${target.name.padEnd(9)} ${CLIENTS} clients x ${seconds} s: ${round.iterationsPerSecond.toFixed(0)} iterations/s ` +
      `(${((4 * r.iterations!) / r.elapsed!).toFixed(0)} calls/s), p50 ${r.p50!.toFixed(2)} ms, p99 ${r.p99!.toFixed(2)} ms, ` +
      `errors ${r.errors}, NO_SUPPORT ${r.unsupported}; daemon CPU ${cpuUsPerIteration.toFixed(0)} us/iteration; ` +
      `RSS ${mib(rssBefore)} -> ${mib(rssAfter)} MiB${heap}${probe ? `\n${"".padEnd(10)}${probe}` : ""}`,
  );
  return round;
}

function virsh(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => execFile("virsh", args, (error) => (error ? reject(error) : resolve())));
}

/** `virsh list --all` against each target in turn, `runs` times: wall ms and daemon CPU ms per run. */
async function virshList(targets: readonly Target[], runs: number): Promise<Array<{ wallMs: number[]; cpuMs: number }>> {
  const results = targets.map(() => ({ wallMs: [] as number[], cpuMs: 0 }));
  for (let i = 0; i < runs; i++) {
    for (const [k, target] of targets.entries()) {
      const cpu = processCpuMs(target.pid);
      const t0 = performance.now();
      await virsh(["-c", target.uri, "list", "--all"]);
      results[k]!.wallMs.push(performance.now() - t0);
      results[k]!.cpuMs += (processCpuMs(target.pid) - cpu) / runs;
    }
  }
  return results;
}

/** The stalled-reader run: RSS samples of virtkitd while events flow to a client that reads nothing. */
async function stalledReader(dir: string): Promise<void> {
  const { child, uri, log, snapshotDir } = await startVirtkitd(dir, ["--max-client-backlog", "1M"]);
  try {
    const pid = child.pid!;
    const socket = uri.split("socket=")[1]!;
    // The stalled client: registers for lifecycle events, then never reads again (SIGSTOPped python).
    const stalled = spawn("/usr/bin/python3", ["-c", `
import libvirt, sys, os, signal
libvirt.virEventRegisterDefaultImpl()
c = libvirt.open(sys.argv[1])
c.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lambda *a: None, None)
print("registered", flush=True)
os.kill(os.getpid(), signal.SIGSTOP)`, `test+unix:///default?socket=${socket}`], { stdio: ["ignore", "pipe", "ignore"] });
    await new Promise<void>((resolve) => stalled.stdout!.once("data", () => resolve()));
    const heapBefore = await heapAfterGcBytes(pid, snapshotDir);
    const samples: number[] = [rssKiB(pid)];
    const toggler = python(`
import libvirt, sys, time
c = libvirt.open(sys.argv[1]); d = c.lookupByName("test"); end = time.perf_counter() + float(sys.argv[2]); n = 0
while time.perf_counter() < end:
    d.suspend(); d.resume(); n += 2
print(n)`, [uri, String(STALLED_SECONDS)]);
    const sampler = setInterval(() => samples.push(rssKiB(pid)), 1000);
    const events = Number(await toggler);
    clearInterval(sampler);
    samples.push(rssKiB(pid));
    const heapAfter = await heapAfterGcBytes(pid, snapshotDir);
    stalled.kill("SIGKILL");
    const cut = /stopped reading \((\d+) bytes queued\)/.exec(log());
    console.log(
      `stalled reader: ${events} lifecycle events in ${STALLED_SECONDS} s; virtkitd RSS (MiB) ` +
        `${samples.map((k) => (k / 1024).toFixed(0)).join(" ")}, heap after GC ${(heapBefore / 1048576).toFixed(1)} -> ` +
        `${(heapAfter / 1048576).toFixed(1)} MiB; ${cut ? `client cut off at ${cut[1]} queued bytes` : "client not cut off"}`,
    );
  } finally {
    await stop(child);
  }
}

const virtkitdTarget = (name: string, d: Virtkitd): Target => ({
  name,
  uri: d.uri,
  pid: d.child.pid!,
  heapBytes: () => heapAfterGcBytes(d.child.pid!, d.snapshotDir),
  probe: async () => formatLoopProbe(await readLoopProbe(d.child)),
});

/** Median and best (lowest) of a list, for the summary. */
const medianBest = (xs: number[], digits = 2) => `median ${median(xs).toFixed(digits)}, best ${Math.min(...xs).toFixed(digits)}`;

/** Runs the suite. */
export async function run(): Promise<void> {
  if (libvirtdMissing.length > 0) {
    console.log(`skipped: needs ${libvirtdMissing.join(", ")}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "vk-bench-daemon-"));
  const libvirtd = await startLibvirtd({ driver: "test" });
  const ours = await startVirtkitd(join(dir, "ours"));
  const baseline = BASELINE ? await startVirtkitd(join(dir, "baseline"), [], BASELINE, BASELINE_NODE_FLAGS) : undefined;
  console.log(`load average at start: ${loadAverage()}; virtkitd RSS at start ${mib(rssKiB(ours.child.pid!))} MiB, libvirtd ${mib(rssKiB(libvirtd.pid))} MiB`);
  const targets: Target[] = [
    virtkitdTarget("virtkitd", ours),
    { name: "libvirtd", uri: libvirtd.uri("test"), pid: libvirtd.pid },
    ...(baseline ? [virtkitdTarget("baseline", baseline)] : []),
  ];
  const rounds: Round[][] = targets.map(() => []);
  let list: Array<{ wallMs: number[]; cpuMs: number }>;
  let firstRuns: Array<{ wallMs: number[]; cpuMs: number }> = [];
  try {
    // Warm-up, not counted: V8 compiles the hot paths and grows its young generation, libvirtd its pools.
    if (WARMUP_SECONDS > 0) for (const target of targets) await python(LOAD, [target.uri, String(CLIENTS), String(WARMUP_SECONDS)]);
    console.log(`after a ${WARMUP_SECONDS} s warm-up: virtkitd RSS ${mib(rssKiB(ours.child.pid!))} MiB, libvirtd ${mib(rssKiB(libvirtd.pid))} MiB`);
    // Interleaved: virtkitd, libvirtd (, baseline), then the same again, so drift on the shared machine hits all.
    for (let round = 0; round < ROUNDS; round++) {
      for (const [k, target] of targets.entries()) rounds[k]!.push(await load(target, SECONDS));
      console.log(`load average after round ${round + 1}: ${loadAverage()}`);
    }
    for (const target of targets) {
      if (LIST_RUNS === 0) continue;
      const count = await python(DEFINE_100, [target.uri]);
      console.log(`${target.name}: ${count} domains defined`);
    }
    if (LIST_WARMUP_RUNS > 0 && LIST_RUNS > 0) {
      firstRuns = await virshList(targets, LIST_WARMUP_RUNS);
      for (const [k, target] of targets.entries()) {
        const { wallMs, cpuMs } = firstRuns[k]!;
        console.log(`virsh list --all, 101 domains, ${target.name}, first ${LIST_WARMUP_RUNS} runs (warm-up, not counted): median ${median(wallMs).toFixed(0)} ms, daemon CPU ${cpuMs.toFixed(1)} ms/run`);
      }
    }
    list = LIST_RUNS > 0 ? await virshList(targets, LIST_RUNS) : [];
    for (const [k, target] of list.length > 0 ? targets.entries() : []) {
      const { wallMs, cpuMs } = list[k]!;
      console.log(`virsh list --all, 101 domains, ${target.name}: median ${median(wallMs).toFixed(0)} ms [${wallMs.map((x) => x.toFixed(0)).join(", ")}], daemon CPU ${cpuMs.toFixed(1)} ms/run`);
    }
  } finally {
    await stop(ours.child);
    if (baseline) await stop(baseline.child);
    await libvirtd.stop();
  }
  if (STALLED_SECONDS > 0) await stalledReader(join(dir, "stalled"));
  rmSync(dir, { recursive: true, force: true });
  const lv = rounds[1]!;
  for (const [k, target] of targets.entries()) {
    if (k === 1) continue;
    const vk = rounds[k]!;
    const ratios = (f: (r: Round) => number) => vk.map((r, i) => `${(f(r) / f(lv[i]!)).toFixed(2)}x`).join(", ");
    console.log(`ratios ${target.name}/libvirtd by round (aim: p99 <= 1): p99 ${ratios((r) => r.p99)}; p50 ${ratios((r) => r.p50)}; ` +
      `iterations/s ${ratios((r) => r.iterationsPerSecond)}; daemon CPU per iteration ${ratios((r) => r.cpuUsPerIteration)}`);
  }
  for (const [k, target] of targets.entries()) {
    const rs = rounds[k]!;
    console.log(`${target.name.padEnd(9)} over ${rs.length} rounds: p99 ms ${medianBest(rs.map((r) => r.p99))}; p50 ms ${medianBest(rs.map((r) => r.p50))}; ` +
      `daemon CPU us/iteration ${medianBest(rs.map((r) => r.cpuUsPerIteration), 0)}`);
  }
  const listLine = (runs: Array<{ wallMs: number[]; cpuMs: number }>, what: string) =>
    targets.map((t, k) => `${t.name} ${median(runs[k]!.wallMs).toFixed(0)} ms (CPU ${runs[k]!.cpuMs.toFixed(1)} ms/run)`).join(" vs ") +
    `, ratio ${(median(runs[0]!.wallMs) / median(runs[1]!.wallMs)).toFixed(2)}x${what}`;
  if (list.length > 0) console.log(`virsh list --all, 101 domains (aim: virtkitd <= libvirtd): ${listLine(list, `; load average now ${loadAverage()}`)}`);
  if (firstRuns.length > 0) console.log(`virsh list --all, 101 domains, first ${LIST_WARMUP_RUNS} runs: ${listLine(firstRuns, "")}`);
}
