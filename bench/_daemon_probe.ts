/**
 * What the daemon bench reads of a running daemon from outside, the same way for virtkitd and libvirtd:
 * CPU time (every thread, user + system, from /proc), RSS, and for virtkitd the V8 heap after a full
 * garbage collection (a heap snapshot, which Node writes on SIGUSR2 when started with
 * `--heapsnapshot-signal`; writing one collects garbage first, so its size is the live heap). CPU per
 * call does not depend on how loaded the shared machine is the way wall time does, so the bench prints
 * it beside latency. It also builds `dist/` when it is older than the sources, so virtkitd runs as its
 * package bin does (`dist/cli/virtkitd.js`), not through tsx's on-the-fly transform.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** CPU time the process has used so far, all threads, in milliseconds (clock ticks of 10 ms). */
export function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The process's resident set, in KiB. */
export function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
}

/** The 1, 5 and 15 minute load averages, for the record next to the figures. */
export function loadAverage(): string {
  return loadavg().map((x) => x.toFixed(2)).join(" ");
}

/** The sum of every node's self size in a heap snapshot file: the live JS heap at the snapshot. */
function snapshotBytes(file: string): number {
  const snapshot = JSON.parse(readFileSync(file, "utf8")) as { snapshot: { meta: { node_fields: string[] } }; nodes: number[] };
  const fields = snapshot.snapshot.meta.node_fields;
  const stride = fields.length;
  const selfSize = fields.indexOf("self_size");
  let total = 0;
  for (let i = selfSize; i < snapshot.nodes.length; i += stride) total += snapshot.nodes[i]!;
  return total;
}

/**
 * Asks a Node process started with `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=DIR` for a heap
 * snapshot and returns its live heap in bytes (the file is removed after reading).
 *
 * @param pid The process.
 * @param dir Its diagnostic directory.
 * @param timeoutMs How long to wait for a complete file.
 */
export async function heapAfterGcBytes(pid: number, dir: string, timeoutMs = 60_000): Promise<number> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, "SIGUSR2");
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const file = readdirSync(dir).find((name) => name.endsWith(".heapsnapshot") && !before.has(name));
    if (!file) continue;
    try {
      // The file grows while Node writes it; it parses once it is whole.
      const bytes = snapshotBytes(join(dir, file));
      rmSync(join(dir, file), { force: true });
      return bytes;
    } catch {
      // not complete yet
    }
  }
  throw new Error(`no heap snapshot from ${pid} within ${timeoutMs} ms`);
}

function newestMtimeMs(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return path.endsWith(".ts") ? stat.mtimeMs : 0;
  let newest = 0;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtimeMs(join(path, name)));
  return newest;
}

/**
 * Builds `dist/` with the repository's build config unless `dist/cli/virtkitd.js` is newer than every
 * source it is built from.
 *
 * @param root The repository.
 * @returns The path of the built bin.
 */
export function builtVirtkitd(root: string): string {
  const bin = join(root, "dist", "cli", "virtkitd.js");
  let builtAt = 0;
  try {
    builtAt = statSync(bin).mtimeMs;
  } catch {
    // not built yet
  }
  const sourcesAt = Math.max(...["mod.ts", "core", "drivers", "daemon", "cli"].map((p) => newestMtimeMs(join(root, p))));
  if (builtAt < sourcesAt) {
    const t0 = performance.now();
    execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.build.json")], {
      cwd: root,
      stdio: "inherit",
    });
    console.log(`built dist/ for the virtkitd bin in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return bin;
}
