/**
 * Download of a 512 MiB raw volume holding 256 MiB of data (1 MiB data, 1 MiB hole; a thin volume, so
 * the holes are holes of its file) from a `dir` pool of a real libvirtd 9.0, through virtkit's `remote`
 * driver, against `virsh vol-download` of the same volume into a file on the same file system.
 *
 * Two pairs per round, every output compared with the source (`cmp`):
 * - **full file**: both write all 512 MiB. virtkit's download is a sparse stream (its default: libvirtd
 *   sends the holes as their length and does not read them; the reader gets zeros); virsh's default
 *   download is not (libvirtd reads the holes and sends 256 MiB of zeros).
 * - **sparse file**: both leave the holes unwritten. virtkit skips all-zero reads, as `virtkit
 *   vol-download` does; virsh runs with `--sparse` (a sparse stream, seeking over each hole).
 *
 * virtkit runs in a child `node` process on the built `dist/` (what users run, not tsx's loader),
 * connected once and warmed up by one uncounted download, timed inside the process (wall and CPU,
 * user + system) like virsh's own `-t` timing of the command. virsh is one process per download:
 * its figures are the command's time (`-t`), the process's wall time and its CPU (rusage), and its CPU
 * net of a `virsh vol-info` run (start, connect, one call).
 *
 * The runs are interleaved in pairs, who goes first alternating, each settled alike (no output file,
 * `sync`, source read once, 1.5 GiB of memory touched: machine-facts §6). Medians, best runs and the
 * ratio of each pair are printed with the load average.
 *
 * `BENCH_DOWNLOAD_RUNS` sets the rounds (default 7), `BENCH_DOWNLOAD_BUFFER_KIB` virtkit's read buffer (256),
 * `BENCH_DOWNLOAD_WRITE_KIB` its file writes (64). `BENCH_DOWNLOAD_NULL=1` writes both to `/dev/null`
 * instead (no cmp): the transfer's own cost, without the page cache and the disk.
 * `BENCH_DOWNLOAD_ALLOCATED=1` writes the zeros into the volume as data: a file without holes, which
 * libvirtd then sends whole over a sparse stream too. Needs libvirtd, virsh, setpriv, qemu-io, cmp and
 * `dist/` (`npx tsc -p tsconfig.build.json`); prints a note without them.
 *
 * @module
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { connect } from "../mod.ts";
import { libvirtdMissing, type RunningLibvirtd, startLibvirtd } from "../test/_support/libvirtd.ts";

const MiB = 1024 * 1024;
const VOLUME_MIB = 512;
const RUNS = Number(process.env.BENCH_DOWNLOAD_RUNS ?? 7);
/** The reader's buffer: 256 KiB by default, about virsh's own read (one 262,120-byte frame, strace). */
const BUFFER_KIB = Number(process.env.BENCH_DOWNLOAD_BUFFER_KIB ?? 256);
/**
 * Each read is written in pieces of this size (64 KiB by default). On this VM an aligned write above
 * 64 KiB into a new file gets a large page-cache folio carved from memory the balloon has handed back
 * to the host (free page reporting from 128 KiB blocks up), which the host must fault in again: 512 MiB
 * written by Python in 8 runs each took 101-1424 ms in 256 KiB writes, 665-1549 ms in 1 MiB writes,
 * 113-148 ms in 64 KiB writes and 124-206 ms in virsh's own unaligned 262,120-byte writes. Larger
 * pieces would measure the balloon, not the download.
 */
const WRITE_KIB = Number(process.env.BENCH_DOWNLOAD_WRITE_KIB ?? 64);
const TO_NULL = process.env.BENCH_DOWNLOAD_NULL === "1";
const ALLOCATED = process.env.BENCH_DOWNLOAD_ALLOCATED === "1";
const DIST_MOD = resolve(import.meta.dirname ?? ".", "../dist/mod.js");
const DIST_ZERO = resolve(import.meta.dirname ?? ".", "../dist/core/copy/zero_bytes.js");

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(", ");
const loadavg = () => readFileSync("/proc/loadavg", "utf8").trim();

/**
 * The virtkit side, run by `node` on dist/: reads "run PATH full|sparse" lines, downloads the volume
 * into PATH with a BYOB reader (VIRTKIT_BUFFER_BYTES, each read written at its position in pieces of
 * VIRTKIT_WRITE_BYTES; with "sparse"
 * all-zero reads are not written and the file is truncated to its length) and prints
 * `{ wallMs, cpuMs, bytes }`.
 */
const WORKER = `
import { open } from "node:fs/promises";
import { createInterface } from "node:readline";
const { connect } = await import(process.env.VIRTKIT_MOD);
const { isAllZero } = await import(process.env.VIRTKIT_ZERO);
const conn = await connect(process.env.VIRTKIT_URI);
const vol = await (await conn.pools.get("bench")).volumes.get("big.raw");
const cpuMs = (c0) => { const u = process.cpuUsage(c0); return (u.user + u.system) / 1000; };
async function download(path, sparse) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const job = await vol.download();
  const reader = job.readable.getReader({ mode: "byob" });
  const out = await open(path, "w");
  let buffer = new ArrayBuffer(Number(process.env.VIRTKIT_BUFFER_BYTES));
  const WRITE_BYTES = Number(process.env.VIRTKIT_WRITE_BYTES);
  let bytes = 0;
  for (;;) {
    const { value, done } = await reader.read(new Uint8Array(buffer));
    if (done) break;
    if (!sparse || !isAllZero(value)) {
      for (let at = 0; at < value.byteLength; at += WRITE_BYTES) await out.write(value, at, Math.min(WRITE_BYTES, value.byteLength - at), bytes + at);
    }
    bytes += value.byteLength;
    buffer = value.buffer;
  }
  if (sparse) await out.truncate(bytes);
  await out.close();
  await job.wait();
  return { wallMs: performance.now() - t0, cpuMs: cpuMs(c0), bytes };
}
console.log("ready");
for await (const line of createInterface({ input: process.stdin })) {
  const [verb, path, mode] = line.split(" ");
  if (verb !== "run") break;
  console.log(JSON.stringify(await download(path, mode === "sparse")));
}
await conn.close();
`;

/** Runs `args`; prints the wall time and the CPU time (user + system) of the process, in ms, then its stdout. */
const TIMED = `
import resource, subprocess, sys, time
t0 = time.perf_counter()
out = subprocess.run(sys.argv[1:], check=True, capture_output=True, text=True).stdout
t = (time.perf_counter() - t0) * 1000
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(t, (r.ru_utime + r.ru_stime) * 1000)
print(out)
`;

interface Run {
  /** The command's own time (virtkit: the download; virsh: its -t figure). */
  wallMs: number;
  cpuMs: number;
  /** virsh only: the whole process, start to exit. */
  processMs?: number;
}

/** Runs virsh under the timer; its `-t` line gives the command's own time. */
function timedVirsh(uri: string, args: string[]): Run {
  const out = execFileSync("/usr/bin/python3", ["-c", TIMED, "virsh", "-t", "-q", "-c", uri, ...args], { encoding: "utf8" });
  const [first, ...rest] = out.trim().split("\n");
  const [processMs, cpuMs] = first!.split(" ").map(Number);
  const timing = /\(Time: ([\d.]+) ms\)/.exec(rest.join("\n"));
  if (!timing) throw new Error(`no timing in virsh's output: ${rest.join(" ")}`);
  return { wallMs: Number(timing[1]), cpuMs: cpuMs!, processMs: processMs! };
}

/** Same state before every timed download: no output file, dirty pages written, source read once, memory touched. */
function settle(source: string, output: string): void {
  if (!TO_NULL) rmSync(output, { force: true });
  execFileSync("sync");
  execFileSync("cat", [source], { stdio: ["ignore", "ignore", "ignore"] });
  execFileSync("dd", ["if=/dev/zero", "of=/dev/null", "bs=1536M", "count=1"], { stdio: "ignore" });
}

/** MiB of disk the file takes (its allocated blocks). */
function allocatedMiB(path: string): number {
  return Math.round((statSync(path).blocks * 512) / MiB);
}

function check(source: string, output: string, who: string): void {
  if (TO_NULL) return;
  try {
    execFileSync("cmp", ["-s", source, output]);
  } catch {
    throw new Error(`${who}'s download differs from the volume`);
  } finally {
    rmSync(output, { force: true });
  }
}

/** The virtkit worker: one process, one connection, a download per `run()`. */
async function startWorker(uri: string) {
  const child = spawn(process.execPath, ["--input-type=module", "-e", WORKER], {
    env: { ...process.env, VIRTKIT_MOD: pathToFileURL(DIST_MOD).href, VIRTKIT_ZERO: pathToFileURL(DIST_ZERO).href, VIRTKIT_URI: uri, VIRTKIT_BUFFER_BYTES: String(BUFFER_KIB * 1024), VIRTKIT_WRITE_BYTES: String(WRITE_KIB * 1024) },
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error("the virtkit worker exited");
    return value as string;
  };
  if ((await next()) !== "ready") throw new Error("the virtkit worker did not start");
  return {
    async run(output: string, sparse = false): Promise<Run> {
      child.stdin.write(`run ${output} ${sparse ? "sparse" : "full"}\n`);
      const result = JSON.parse(await next()) as Run & { bytes: number };
      if (result.bytes !== VOLUME_MIB * MiB) throw new Error(`virtkit downloaded ${result.bytes} bytes`);
      return result;
    },
    async stop(): Promise<void> {
      const exited = new Promise((done) => child.once("exit", done));
      child.stdin.end("quit\n");
      await exited;
    },
    kill: () => child.kill("SIGKILL"),
  };
}

async function makeVolume(daemon: RunningLibvirtd): Promise<string> {
  const dir = daemon.mkdir("bench-pool");
  const conn = await connect(daemon.uri("qemu"));
  try {
    const pool = await conn.pools.create({ name: "bench", type: "dir", path: join(dir, "p") });
    const vol = await pool.volumes.create({ name: "big.raw", capacityBytes: VOLUME_MIB * MiB, format: "raw" });
    const writes: string[] = [];
    for (let mib = 0; mib < VOLUME_MIB; mib += 2) writes.push("-c", `write -q -P ${(mib % 250) + 1} ${mib}M 1M`);
    // Zeros written as data: no holes in the file, so a sparse stream has nothing to skip.
    if (ALLOCATED) for (let mib = 1; mib < VOLUME_MIB; mib += 2) writes.push("-c", `write -q -P 0 ${mib}M 1M`);
    execFileSync("qemu-io", ["-f", "raw", ...writes, vol.path]);
    return vol.path;
  } finally {
    await conn.close();
  }
}

/** Runs the suite. */
export async function run(): Promise<void> {
  if (libvirtdMissing.length > 0 || !existsSync(DIST_MOD)) {
    console.log(`skipped: needs ${[...libvirtdMissing, "dist/ (npx tsc -p tsconfig.build.json)"].join(", ")}`);
    return;
  }
  const daemon = await startLibvirtd({ driver: "qemu" });
  let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
  try {
    const source = await makeVolume(daemon);
    // A thin volume: its holes are holes of the file (about 256 MiB allocated), which a sparse stream skips.
    const sourceMiB = allocatedMiB(source);
    const uri = daemon.uri("qemu");
    const outOurs = TO_NULL ? "/dev/null" : join(daemon.dir, "out-virtkit.raw");
    const outVirsh = TO_NULL ? "/dev/null" : join(daemon.dir, "out-virsh.raw");
    worker = await startWorker(uri);
    // Warm-up (uncounted): V8 compiles the receive path over the first download.
    settle(source, outOurs);
    await worker.run(outOurs);
    check(source, outOurs, "virtkit");
    // virsh's fixed cost: start, connect, look the volume up, one call.
    const base = median([0, 1, 2].map(() => timedVirsh(uri, ["vol-info", "--pool", "bench", "big.raw"]).cpuMs));
    const loadBefore = loadavg();
    const kinds = [
      { name: "full file", virshArgs: [] as string[], sparse: false, ours: [] as Run[], virsh: [] as Run[], allocated: [] as number[] },
      { name: "sparse file", virshArgs: ["--sparse"], sparse: true, ours: [] as Run[], virsh: [] as Run[], allocated: [] as number[] },
    ];
    for (let i = 0; i < RUNS; i++) {
      for (const kind of kinds) {
        const runOurs = async () => {
          settle(source, outOurs);
          kind.ours.push(await worker!.run(outOurs, kind.sparse));
          if (!TO_NULL) kind.allocated.push(allocatedMiB(outOurs));
          check(source, outOurs, "virtkit");
        };
        const runVirsh = () => {
          settle(source, outVirsh);
          kind.virsh.push(timedVirsh(uri, ["vol-download", ...kind.virshArgs, "--pool", "bench", "big.raw", outVirsh]));
          if (!TO_NULL) kind.allocated.push(allocatedMiB(outVirsh));
          check(source, outVirsh, "virsh");
        };
        if (i % 2 === 0) {
          await runOurs();
          runVirsh();
        } else {
          runVirsh();
          await runOurs();
        }
      }
    }
    const loadAfter = loadavg();
    const wall = (rs: Run[]) => rs.map((r) => r.wallMs);
    const cpu = (rs: Run[]) => rs.map((r) => r.cpuMs);
    const rate = (ms: number) => ((VOLUME_MIB / ms) * 1000).toFixed(0);
    console.log(`load average before ${loadBefore}, after ${loadAfter}; ${RUNS} rounds of two pairs, who goes first alternating; virtkit reads ${BUFFER_KIB} KiB at a time, writes ${WRITE_KIB} KiB${TO_NULL ? "; into /dev/null" : ""}; source allocated ${sourceMiB} MiB`);
    for (const { name, virshArgs, ours, virsh, allocated } of kinds) {
      const [o, v] = [median(wall(ours)), median(wall(virsh))];
      const pairs = ours.map((r, i) => virsh[i]!.wallMs / r.wallMs);
      const cpuPairs = ours.map((r, i) => r.cpuMs / virsh[i]!.cpuMs);
      const virshName = ["virsh vol-download", ...virshArgs].join(" ");
      console.log(`${name}${allocated.length > 0 ? ` (outputs allocated ${Math.min(...allocated)}-${Math.max(...allocated)} MiB)` : ""}:`);
      console.log(`  download ${VOLUME_MIB} MiB (256 MiB data): virtkit ${o.toFixed(0)} ms = ${rate(o)} MiB/s [${fmt(wall(ours))}]`);
      console.log(`  download ${VOLUME_MIB} MiB (256 MiB data): ${virshName} ${v.toFixed(0)} ms = ${rate(v)} MiB/s (-t) [${fmt(wall(virsh))}], process ${median(virsh.map((r) => r.processMs!)).toFixed(0)} ms`);
      console.log(`  throughput virtkit / ${virshName}: ${(v / o).toFixed(2)}x of medians, ${(Math.min(...wall(virsh)) / Math.min(...wall(ours))).toFixed(2)}x of best runs, median pair ${median(pairs).toFixed(2)}x [${pairs.map((x) => x.toFixed(2)).join(", ")}] (target >= 1.0x)`);
      console.log(`  CPU (user + system): virtkit ${median(cpu(ours)).toFixed(0)} ms [${fmt(cpu(ours))}], virsh ${median(cpu(virsh)).toFixed(0)} ms [${fmt(cpu(virsh))}] (${(median(cpu(virsh)) - base).toFixed(0)} ms net of a vol-info run's ${base.toFixed(0)} ms)`);
      console.log(`  CPU virtkit / virsh: median pair ${median(cpuPairs).toFixed(2)}x [${cpuPairs.map((x) => x.toFixed(2)).join(", ")}]; best ${(Math.min(...cpu(ours)) / Math.min(...cpu(virsh))).toFixed(2)}x`);
    }
    await worker.stop();
    worker = undefined;
  } finally {
    worker?.kill();
    await daemon.stop();
  }
}
