/**
 * The transfer rate and ETA the `virtkit` command shows for a job. The rate is measured over the bytes
 * really copied (`JobInfo.copiedBytes`), so a cap that holds is never exceeded on screen even when holes
 * make `cur` jump; the ETA scales what is left by the share of data seen so far, so skipped regions
 * shorten it instead of making it wrong.
 *
 * @module
 */
import type { JobInfo } from "../core/job.ts";

/** What is shown for a job at one moment. */
export interface JobRate {
  /** Bytes per second of real transfer (or of progress, when the driver does not report copies). */
  readonly bytesPerSecond: number;
  /** True when the rate is over copied bytes; false when it is the driver's progress rate. */
  readonly transfer: boolean;
  /** Estimated time left, when there is a rate to estimate from. */
  readonly etaMs?: number;
}

interface Sample {
  readonly timeMs: number;
  readonly copiedBytes: number;
}

/** How far back the rate looks: long enough to smooth chunking, short enough to follow a new cap. */
const WINDOW_MS = 3000;

/**
 * Measures a job's transfer rate from its successive snapshots.
 *
 * @example A job that copied 64 MiB in one second and skipped as much again as holes
 * ```ts
 * import { JobRateMeter } from "./job_rate.ts";
 * const MiB = 1024 * 1024;
 * const base = { id: "job-1", type: "volume-pull", state: "running", target: {}, end: 256 * MiB, bandwidth: 64 * MiB, bytesPerSecond: 0, createdAt: 0 } as const;
 * const meter = new JobRateMeter();
 * meter.add({ ...base, cur: 0, copiedBytes: 0 }, 0);
 * const rate = meter.add({ ...base, cur: 128 * MiB, copiedBytes: 64 * MiB }, 1000);
 * if (rate.bytesPerSecond !== 64 * MiB || !rate.transfer) throw new Error(JSON.stringify(rate));
 * if (rate.etaMs !== 1000) throw new Error(`eta ${rate.etaMs}`); // 128 MiB left, half of it data, at 64 MiB/s
 * ```
 */
export class JobRateMeter {
  #samples: Sample[] = [];

  /**
   * Adds a snapshot taken at `timeMs` and returns the rate and ETA now.
   *
   * @param info The job's snapshot.
   * @param timeMs When it was taken (the event's time).
   * @returns The rate and ETA to show.
   */
  add(info: JobInfo, timeMs: number): JobRate {
    if (info.copiedBytes === undefined) {
      return { bytesPerSecond: info.bytesPerSecond, transfer: false, ...(info.etaMs === undefined ? {} : { etaMs: info.etaMs }) };
    }
    const samples = this.#samples;
    samples.push({ timeMs, copiedBytes: info.copiedBytes });
    while (samples.length > 2 && samples[1]!.timeMs <= timeMs - WINDOW_MS) samples.shift();
    const first = samples[0]!;
    const spanMs = timeMs - first.timeMs;
    const bytesPerSecond = spanMs > 0 ? Math.round(((info.copiedBytes - first.copiedBytes) * 1000) / spanMs) : 0;
    if (bytesPerSecond <= 0 || info.cur <= 0) return { bytesPerSecond, transfer: true };
    // What is left will hold data in the same share as what was done: only that costs time.
    const dataShare = Math.min(1, info.copiedBytes / info.cur);
    const etaMs = Math.ceil(((info.end - info.cur) * dataShare * 1000) / bytesPerSecond);
    return { bytesPerSecond, transfer: true, etaMs };
  }
}
