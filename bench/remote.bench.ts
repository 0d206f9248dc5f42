/**
 * The `remote` driver against libvirt's own C client, on one real libvirtd 9.0 started for the run:
 * 1. 2,000 sequential `domains.get("test")` + `info()` on `test+unix:///default`, against
 *    python3-libvirt's `lookupByName("test")` + `info()` on the same daemon (timed inside Python, the
 *    connection already open, like ours);
 * 2. the same 2,000 calls from 16 concurrent callers on one virtkit connection, against the sequential
 *    figure (replies are matched by serial, so calls overlap on the socket).
 * 3. a download of a 512 MiB raw volume holding 256 MiB of data (1 MiB data, 1 MiB hole) in a `dir`
 *    pool, `vol.download()` read with a BYOB reader into a file, against `virsh vol-download` of the
 *    same volume into a file on the same file system (both transfer every byte; settled alike first).
 * Each is run 7 times (the download 5), interleaved, after a warm-up of virtkit's JIT; medians are
 * reported with every run, and the ratio of the best runs (on a loaded machine the least disturbed
 * run is the best estimate of each side's own cost). CPU time (user + system) of each side is printed
 * too: on a shared machine it moves less with the load than wall time does.
 *
 * Needs libvirtd, virsh, setpriv and /usr/bin/python3 with the libvirt module; prints a note without them.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import process from "node:process";
import { existsSync, rmSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import type { Connection } from "../core/connection.ts";
import { connect } from "../mod.ts";
import { libvirtdMissing, startLibvirtd } from "../test/_support/libvirtd.ts";

const CALLS = 2000;
const RUNS = 7;
const CONCURRENCY = 16;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(", ");
const min = (xs: number[]) => Math.min(...xs);

// Prints the wall time and the CPU time (user + system, this process) of the loop, in ms.
const PYTHON = `
import libvirt, resource, sys, time
conn = libvirt.open(sys.argv[1])
conn.lookupByName("test").info()
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
for _ in range(int(sys.argv[2])):
    conn.lookupByName("test").info()
t = (time.perf_counter() - t0) * 1000
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(t, (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000)
conn.close()
`;

// Runs a command; prints its wall time and its CPU time (user + system), in ms.
const TIMED = `
import resource, subprocess, sys, time
t0 = time.perf_counter()
subprocess.run(sys.argv[1:], check=True)
t = (time.perf_counter() - t0) * 1000
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(t, (r.ru_utime + r.ru_stime) * 1000)
`;

/** CPU time (user + system) of this process since `since`, in ms. */
const cpuMs = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};

/** Runs the suite. */
export async function run(): Promise<void> {
  if (libvirtdMissing.length > 0 || !existsSync("/usr/bin/python3")) {
    console.log(`skipped: needs ${[...libvirtdMissing, "/usr/bin/python3"].join(", ")}`);
    return;
  }
  const daemon = await startLibvirtd({ driver: "test" });
  try {
    const conn = await connect(daemon.uri("test"));
    const oneCall = async () => (await conn.domains.get("test")).info();
    // Warm the JIT first: the first thousand calls run unoptimised code (Python's client is compiled C).
    for (let n = 0; n < 2 * CALLS; n++) await oneCall();
    const ours: number[] = [];
    const python: number[] = [];
    const oursCpu: number[] = [];
    const pythonCpu: number[] = [];
    const concurrent: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const c0 = process.cpuUsage();
      let t0 = performance.now();
      for (let n = 0; n < CALLS; n++) await oneCall();
      ours.push(performance.now() - t0);
      oursCpu.push(cpuMs(c0));
      const [wallMs, usedMs] = execFileSync("/usr/bin/python3", ["-c", PYTHON, `test+unix:///default?socket=${daemon.socketPath}`, String(CALLS)], { encoding: "utf8" }).trim().split(" ").map(Number);
      python.push(wallMs!);
      pythonCpu.push(usedMs!);
      t0 = performance.now();
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        for (let n = 0; n < CALLS / CONCURRENCY; n++) await oneCall();
      }));
      concurrent.push(performance.now() - t0);
    }
    await conn.close();
    await downloads(daemon);
    const [o, p, c] = [median(ours), median(python), median(concurrent)];
    console.log(`${CALLS} sequential get("test") + info():  virtkit ${o.toFixed(0)} ms [${fmt(ours)}]`);
    console.log(`${CALLS} sequential lookupByName + info():  python3-libvirt ${p.toFixed(0)} ms [${fmt(python)}]`);
    console.log(`  ratio virtkit / python3-libvirt: ${(o / p).toFixed(2)}x of medians, ${(min(ours) / min(python)).toFixed(2)}x of best runs (target <= 1.0x)`);
    // CPU time depends less on the machine's load than wall time: the client's own cost per iteration.
    const perIteration = (ms: number) => ((ms * 1000) / CALLS).toFixed(1);
    console.log(`  client CPU per get + info (user + system, median): virtkit ${perIteration(median(oursCpu))} us, python3-libvirt ${perIteration(median(pythonCpu))} us; ratio ${(median(oursCpu) / median(pythonCpu)).toFixed(2)}x`);
    console.log(`${CALLS} calls from ${CONCURRENCY} concurrent callers on one connection: ${c.toFixed(0)} ms [${fmt(concurrent)}]`);
    console.log(`  throughput concurrent / sequential: ${(o / c).toFixed(2)}x of medians, ${(min(ours) / min(concurrent)).toFixed(2)}x of best runs (target >= 2x)`);
    for (const line of downloadReport) console.log(line);
  } finally {
    await daemon.stop();
  }
}

const MiB = 1024 * 1024;
const VOLUME_MIB = 512;
const downloadReport: string[] = [];

/** Same state before every timed download: no output file, dirty pages written, source read once, memory touched. */
function settle(source: string, output: string): void {
  rmSync(output, { force: true });
  execFileSync("sync");
  execFileSync("cat", [source], { stdio: ["ignore", "ignore", "ignore"], maxBuffer: 1 });
  execFileSync("dd", ["if=/dev/zero", "of=/dev/null", "bs=1536M", "count=1"], { stdio: "ignore" });
}

async function downloadWithVirtkit(conn: Connection, output: string, cpu: number[]): Promise<number> {
  const vol = await (await conn.pools.get("bench")).volumes.get("big.raw");
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const job = await vol.download();
  const reader = job.readable.getReader({ mode: "byob" });
  const out = await open(output, "w");
  let buffer = new ArrayBuffer(MiB);
  let position = 0;
  for (;;) {
    const { value, done } = await reader.read(new Uint8Array(buffer));
    if (done) break;
    await out.write(value, 0, value.byteLength, position);
    position += value.byteLength;
    buffer = value.buffer as ArrayBuffer;
  }
  await out.close();
  await job.wait();
  if (position !== VOLUME_MIB * MiB) throw new Error(`downloaded ${position} bytes`);
  cpu.push(cpuMs(c0));
  return performance.now() - t0;
}

async function downloads(daemon: Awaited<ReturnType<typeof startLibvirtd>>): Promise<void> {
  const dir = daemon.mkdir("bench-pool");
  const conn = await connect(daemon.uri("qemu"));
  try {
    const pool = await conn.pools.create({ name: "bench", type: "dir", path: join(dir, "p") });
    const vol = await pool.volumes.create({ name: "big.raw", capacityBytes: VOLUME_MIB * MiB, format: "raw" });
    const writes: string[] = [];
    for (let mib = 0; mib < VOLUME_MIB; mib += 2) writes.push("-c", `write -q -P ${(mib % 250) + 1} ${mib}M 1M`);
    execFileSync("qemu-io", ["-f", "raw", ...writes, vol.path]);
    const ours: number[] = [];
    const oursCpu: number[] = [];
    const virsh: number[] = [];
    const virshCpu: number[] = [];
    const outOurs = join(daemon.dir, "out-virtkit.raw");
    const outVirsh = join(daemon.dir, "out-virsh.raw");
    for (let i = 0; i < 5; i++) {
      settle(vol.path, outOurs);
      ours.push(await downloadWithVirtkit(conn, outOurs, oursCpu));
      settle(vol.path, outVirsh);
      const [wallMs, usedMs] = execFileSync("/usr/bin/python3", ["-c", TIMED, "virsh", "-q", "-c", daemon.uri("qemu"), "vol-download", "--pool", "bench", "big.raw", outVirsh], { encoding: "utf8" })
        .trim().split(" ").map(Number);
      virsh.push(wallMs!);
      virshCpu.push(usedMs!);
      if (statSync(outVirsh).size !== VOLUME_MIB * MiB) throw new Error("virsh downloaded a different size");
    }
    rmSync(outOurs, { force: true });
    rmSync(outVirsh, { force: true });
    const rate = (ms: number) => ((VOLUME_MIB / ms) * 1000).toFixed(0);
    const [o, v] = [median(ours), median(virsh)];
    downloadReport.push(`download ${VOLUME_MIB} MiB (256 MiB data): virtkit ${o.toFixed(0)} ms = ${rate(o)} MiB/s [${fmt(ours)}]`);
    downloadReport.push(`download ${VOLUME_MIB} MiB (256 MiB data): virsh vol-download ${v.toFixed(0)} ms = ${rate(v)} MiB/s [${fmt(virsh)}]`);
    downloadReport.push(`  throughput virtkit / virsh: ${(v / o).toFixed(2)}x of medians, ${(min(virsh) / min(ours)).toFixed(2)}x of best runs (target >= 1.0x)`);
    downloadReport.push(`  CPU per download (user + system, median): virtkit ${median(oursCpu).toFixed(0)} ms [${fmt(oursCpu)}], virsh ${median(virshCpu).toFixed(0)} ms [${fmt(virshCpu)}]`);
    await vol.delete();
    await pool.stop();
    await pool.delete();
    await pool.undefine();
  } finally {
    await conn.close();
  }
}
