/**
 * virtkitd against Debian's libvirtd 9.0 (its test driver), side by side in one run:
 * 1. 50 concurrent python3-libvirt clients (threads of one Python process, one connection each, a
 *    lifecycle callback registered on each), each looping list + lookup + info + block job info for
 *    BENCH_DAEMON_SECONDS (default 60): iterations per second, p50/p99 latency of one iteration, the
 *    daemon's RSS before and after. libvirtd's test driver has no block jobs: its block job info answers
 *    VIR_ERR_NO_SUPPORT, counted apart from errors (the round trip is made all the same).
 * 2. A client that stops reading while lifecycle events flow (another client suspends and resumes as
 *    fast as it can): virtkitd's RSS over the run, and whether it cut the client off.
 * 3. `virsh list --all` with 100 domains defined: wall time, median of 5 runs each.
 *
 * Needs libvirtd, virsh, setpriv and /usr/bin/python3 with the libvirt module; prints a note without them.
 *
 * @module
 */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { libvirtdMissing, startLibvirtd } from "../test/_support/libvirtd.ts";

const CLIENTS = 50;
const SECONDS = Number(process.env.BENCH_DAEMON_SECONDS ?? 60);
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

const rssKiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function python(code: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile("/usr/bin/python3", ["-c", code, ...args], { maxBuffer: 1 << 24, timeout: (SECONDS + 120) * 1000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${error.message}: ${stderr}`)) : resolve(stdout.trim()))
  );
}

/** Starts virtkitd with node + tsx's loader in-process, so its PID is the daemon's own (for RSS). */
async function startVirtkitd(dir: string, extra: string[] = []): Promise<{ child: ChildProcess; uri: string; log: () => string }> {
  const socket = join(dir, "virtkitd.sock");
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "cli/virtkitd.ts"), "--listen", `unix:${socket}`, ...extra], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  const deadline = Date.now() + 30_000;
  while (!out.includes("ready on")) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`virtkitd did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { child, uri: `test+unix:///default?socket=${socket}`, log: () => err };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

async function load(name: string, uri: string, pid: number): Promise<void> {
  const before = rssKiB(pid);
  const r = JSON.parse(await python(LOAD, [uri, String(CLIENTS), String(SECONDS)])) as Record<string, number>;
  const after = rssKiB(pid);
  console.log(
    `${name.padEnd(9)} ${CLIENTS} clients x ${SECONDS} s: ${(r.iterations! / r.elapsed!).toFixed(0)} iterations/s ` +
      `(${((4 * r.iterations!) / r.elapsed!).toFixed(0)} calls/s), p50 ${r.p50!.toFixed(2)} ms, p99 ${r.p99!.toFixed(2)} ms, ` +
      `errors ${r.errors}, NO_SUPPORT ${r.unsupported}; RSS ${(before / 1024).toFixed(1)} -> ${(after / 1024).toFixed(1)} MiB`,
  );
}

async function virshListMs(uri: string): Promise<number[]> {
  const runs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    execFileSync("virsh", ["-c", uri, "list", "--all"], { stdio: "ignore" });
    runs.push(performance.now() - t0);
  }
  return runs;
}

/** The stalled-reader run: RSS samples of virtkitd while events flow to a client that reads nothing. */
async function stalledReader(dir: string): Promise<void> {
  const { child, uri, log } = await startVirtkitd(dir, ["--max-client-backlog", "1M"]);
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
    const samples: number[] = [rssKiB(pid)];
    const toggler = python(`
import libvirt, sys, time
c = libvirt.open(sys.argv[1]); d = c.lookupByName("test"); end = time.perf_counter() + float(sys.argv[2]); n = 0
while time.perf_counter() < end:
    d.suspend(); d.resume(); n += 2
print(n)`, [uri, String(Math.min(SECONDS, 30))]);
    const sampler = setInterval(() => samples.push(rssKiB(pid)), 1000);
    const events = Number(await toggler);
    clearInterval(sampler);
    samples.push(rssKiB(pid));
    stalled.kill("SIGKILL");
    const cut = /stopped reading \((\d+) bytes queued\)/.exec(log());
    console.log(
      `stalled reader: ${events} lifecycle events in ${Math.min(SECONDS, 30)} s; virtkitd RSS (MiB) ` +
        `${samples.map((k) => (k / 1024).toFixed(0)).join(" ")}; ${cut ? `client cut off at ${cut[1]} queued bytes` : "client not cut off"}`,
    );
  } finally {
    await stop(child);
  }
}

/** Runs the suite. */
export async function run(): Promise<void> {
  if (libvirtdMissing.length > 0) {
    console.log(`skipped: needs ${libvirtdMissing.join(", ")}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "vk-bench-daemon-"));
  const libvirtd = await startLibvirtd({ driver: "test" });
  const ours = await startVirtkitd(dir);
  try {
    // Interleaved: virtkitd, libvirtd, then the same again, so drift on the shared machine hits both.
    for (let round = 0; round < 2; round++) {
      await load("virtkitd", ours.uri, ours.child.pid!);
      await load("libvirtd", libvirtd.uri("test"), libvirtd.pid);
    }
    for (const [name, uri] of [["virtkitd", ours.uri], ["libvirtd", libvirtd.uri("test")]] as const) {
      const count = await python(DEFINE_100, [uri]);
      console.log(`${name}: ${count} domains defined`);
    }
    const a = await virshListMs(ours.uri);
    const b = await virshListMs(libvirtd.uri("test"));
    console.log(`virsh list --all, 101 domains: virtkitd ${median(a).toFixed(0)} ms [${a.map((x) => x.toFixed(0)).join(", ")}], ` +
      `libvirtd ${median(b).toFixed(0)} ms [${b.map((x) => x.toFixed(0)).join(", ")}], ratio ${(median(a) / median(b)).toFixed(2)}x`);
  } finally {
    await stop(ours.child);
    await libvirtd.stop();
  }
  await stalledReader(dir);
  rmSync(dir, { recursive: true, force: true });
}
