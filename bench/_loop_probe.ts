/**
 * A probe the daemon bench loads into virtkitd (`node --import FILE`), to see where the tail latency of
 * a round comes from inside the daemon: how late its event loop runs (perf_hooks'
 * `monitorEventLoopDelay`, 1 ms resolution: a timer's lateness is how long a ready socket waited too),
 * how busy the loop was (event loop utilization), and its garbage collection pauses by kind (each
 * scavenge or mark-compact stops the loop; parallel phases wait for helper threads, which on a loaded
 * 2-core machine may not get a core). The bench asks for the figures over an IPC channel at the end of
 * each round and they start over; a daemon started without the channel never loads the probe.
 *
 * Plain JavaScript written to a file at run time: virtkitd runs as its built bin (`dist/`), and the
 * probe is no part of the daemon.
 *
 * @module
 */
import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

/** What the probe saw since the previous reading. */
export interface LoopProbeReading {
  /** Event loop delay percentiles and maximum, in ms. */
  readonly delayP50Ms: number;
  readonly delayP99Ms: number;
  readonly delayMaxMs: number;
  /** Share of the time the loop was busy (0..1). */
  readonly utilization: number;
  /** GC pauses: count, total and longest, in ms, by kind (`minor` scavenges, `major` mark-compacts, others). */
  readonly gc: Readonly<Record<string, { count: number; totalMs: number; maxMs: number }>>;
}

const SOURCE = `
import { monitorEventLoopDelay, performance, PerformanceObserver, constants } from "node:perf_hooks";
import process from "node:process";
if (process.send) {
  const KINDS = { [constants.NODE_PERFORMANCE_GC_MINOR]: "minor", [constants.NODE_PERFORMANCE_GC_MAJOR]: "major",
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental", [constants.NODE_PERFORMANCE_GC_WEAKCB]: "weakcb" };
  let delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  let elu = performance.eventLoopUtilization();
  let gc = {};
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = KINDS[entry.detail?.kind ?? entry.kind] ?? "other";
      const g = (gc[kind] ??= { count: 0, totalMs: 0, maxMs: 0 });
      g.count++; g.totalMs += entry.duration; g.maxMs = Math.max(g.maxMs, entry.duration);
    }
  }).observe({ entryTypes: ["gc"] });
  process.on("message", (message) => {
    if (message !== "loop-probe") return;
    const reading = { delayP50Ms: delay.percentile(50) / 1e6, delayP99Ms: delay.percentile(99) / 1e6, delayMaxMs: delay.max / 1e6,
      utilization: performance.eventLoopUtilization(elu).utilization, gc };
    delay.reset(); elu = performance.eventLoopUtilization(); gc = {};
    process.send({ loopProbe: reading });
  });
  // The channel must not keep the daemon alive after its own stop.
  process.channel?.unref();
}
`;

/**
 * Writes the probe into `dir` and returns the node arguments that load it.
 *
 * @param dir A scratch directory of the bench.
 * @returns `["--import", FILE]`.
 */
export function loopProbeArgs(dir: string): string[] {
  const file = join(dir, "loop_probe.mjs");
  writeFileSync(file, SOURCE);
  return ["--import", file];
}

/**
 * Reads (and restarts) the probe of a daemon spawned with an IPC channel and {@linkcode loopProbeArgs}.
 *
 * @param child The daemon's process.
 * @param timeoutMs How long to wait for the answer.
 * @returns The figures since the previous reading.
 */
export function readLoopProbe(child: ChildProcess, timeoutMs = 10_000): Promise<LoopProbeReading> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off("message", onMessage);
      reject(new Error("the loop probe did not answer"));
    }, timeoutMs);
    const onMessage = (message: unknown) => {
      const reading = (message as { loopProbe?: LoopProbeReading }).loopProbe;
      if (!reading) return;
      clearTimeout(timer);
      child.off("message", onMessage);
      resolve(reading);
    };
    child.on("message", onMessage);
    child.send("loop-probe");
  });
}

/**
 * One line of a reading: loop delay, utilization and the GC pauses by kind.
 *
 * @param r The reading.
 * @returns The line.
 */
export function formatLoopProbe(r: LoopProbeReading): string {
  const gc = Object.entries(r.gc)
    .map(([kind, g]) => `${kind} ${g.count}x total ${g.totalMs.toFixed(0)} max ${g.maxMs.toFixed(1)} ms`)
    .join(", ");
  return `loop delay p50 ${r.delayP50Ms.toFixed(1)} p99 ${r.delayP99Ms.toFixed(1)} max ${r.delayMaxMs.toFixed(1)} ms, ` +
    `busy ${(100 * r.utilization).toFixed(0)}%; GC ${gc || "none"}`;
}
