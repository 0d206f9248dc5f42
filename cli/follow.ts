/**
 * Follows a job to its end for `--wait`: a live progress bar on a terminal (cli-progress), a plain
 * line a second when stderr is not a terminal, one JSON object per event with `--json`. Ctrl-C aborts
 * the job, or leaves it running with `--detach-on-interrupt`, and says which.
 *
 * @module
 */
import cliProgress from "cli-progress";
import type { Connection } from "../core/connection.ts";
import type { CoreEvent } from "../core/events.ts";
import type { Job, JobInfo } from "../core/job.ts";
import { formatBytes } from "../core/units.ts";
import { type JobRate, JobRateMeter } from "./job_rate.ts";
import type { Output } from "./output.ts";

/** How a followed job ended, for the exit code. */
export interface FollowOutcome {
  /** The job's final snapshot (or the last one seen, when detached). */
  readonly info: JobInfo;
  /** The user pressed Ctrl-C: `"aborted"` the job or `"detached"` from it. */
  readonly interrupted?: "aborted" | "detached";
}

/** Options of {@linkcode followJob}. */
export interface FollowOptions {
  /** Aborted on Ctrl-C. */
  readonly signal?: AbortSignal;
  /** On Ctrl-C leave the job running instead of aborting it. */
  readonly detachOnInterrupt?: boolean;
  /** Called with each progress snapshot (the main job raises its cap from here). */
  readonly onProgress?: (info: JobInfo) => void;
  /** Label in front of the bar (default: the job's id and type). */
  readonly label?: string;
  /** Also stop when a two-phase job reaches `ready` (a mirror in sync). */
  readonly untilReady?: boolean;
}

const TERMINAL = new Set(["job:completed", "job:failed", "job:aborted"]);

/**
 * Shows a job's progress until it ends and returns how it ended.
 *
 * @param conn The connection the job runs on.
 * @param job The job.
 * @param out Where to show it.
 * @param options Ctrl-C handling and a progress hook.
 * @returns The final snapshot, and whether the user interrupted.
 * @example
 * ```ts
 * import { connect } from "../mod.ts";
 * import { createOutput } from "./output.ts";
 * import { followJob } from "./follow.ts";
 * let text = "";
 * const sink = { write: (s: string) => { text += s; } };
 * await using conn = await connect("test:///default");
 * const job = await (await conn.domains.get("test")).blockPull("vda");
 * const { info } = await followJob(conn, job, createOutput(sink, sink, true));
 * const last = JSON.parse(text.trim().split("\n").at(-1)!);
 * if (info.state !== "completed" || last.type !== "job:completed") throw new Error(text);
 * ```
 */
export async function followJob(conn: Connection, job: Job, out: Output, options: FollowOptions = {}): Promise<FollowOutcome> {
  const view = out.json ? jsonView(out) : out.stderr.isTTY ? barView(out, options.label) : lineView(out);
  const meter = new JobRateMeter();
  let last = await job.info();
  view.update(last, meter.add(last, conn.clock.now()));
  let settle!: (ended: FollowOutcome) => void;
  const ended = new Promise<FollowOutcome>((resolve) => (settle = resolve));
  const off = conn.events.on("job:*", (event: CoreEvent) => {
    if (!("job" in event) || event.job.id !== job.id) return;
    last = event.job;
    if (out.json) view.event(event);
    if (event.type === "job:progress") {
      view.update(last, meter.add(last, event.time));
      options.onProgress?.(last);
    }
    if (TERMINAL.has(event.type) || (options.untilReady && last.state === "ready")) settle({ info: last });
  });
  const onInterrupt = () => {
    if (options.detachOnInterrupt) {
      settle({ info: last, interrupted: "detached" });
      return;
    }
    job.abort().catch(() => {}); // already finished: the terminal event settles
    settle({ info: last, interrupted: "aborted" });
  };
  options.signal?.addEventListener("abort", onInterrupt, { once: true });
  try {
    // The job may have ended before the listener was attached.
    const now = await job.info();
    if (TERMINAL.has(`job:${now.state}`) || (options.untilReady && now.state === "ready")) settle({ info: now });
    let outcome = await ended;
    if (outcome.interrupted === "aborted") {
      await job.wait().catch(() => {});
      outcome = { info: await job.info(), interrupted: "aborted" };
    }
    view.stop(outcome.info);
    return outcome;
  } finally {
    off();
    options.signal?.removeEventListener("abort", onInterrupt);
  }
}

/**
 * One line about a job: `job-1 block-pull running 45% 115 MiB / 256 MiB, 32 MiB/s (cap 64 MiB/s), eta 3 s`.
 *
 * @param info A job snapshot.
 * @param rate The rate to show (default: the driver's progress rate).
 * @returns The line.
 * @example
 * ```ts
 * import { describeJob } from "./follow.ts";
 * const line = describeJob({ id: "job-2", type: "volume-clone", state: "failed", target: {}, cur: 0, end: 1024, bandwidth: 0, bytesPerSecond: 0, createdAt: 0, error: "disk full" });
 * if (line !== "job-2 volume-clone failed 0% 0 B / 1 KiB: disk full") throw new Error(line);
 * ```
 */
export function describeJob(info: JobInfo, rate?: JobRate): string {
  const shown = rate ?? { bytesPerSecond: info.bytesPerSecond, transfer: false, etaMs: info.etaMs };
  const percent = info.end > 0 ? Math.floor((info.cur / info.end) * 100) : info.state === "completed" ? 100 : 0;
  const parts = [`${info.id} ${info.type} ${info.state} ${percent}% ${formatBytes(info.cur)} / ${formatBytes(info.end)}`];
  const live = info.state === "running" || info.state === "ready";
  if (live && shown.bytesPerSecond > 0) parts.push(`${formatBytes(shown.bytesPerSecond)}/s${capText(info)}`);
  else if (live && info.bandwidth > 0) parts.push(`cap ${formatBytes(info.bandwidth)}/s`);
  if (live && shown.etaMs !== undefined) parts.push(`eta ${formatDuration(shown.etaMs)}`);
  return parts.join(", ") + (info.error ? `: ${info.error}` : "");
}

/**
 * A duration for people: `850 ms`, `12.3 s`, `4 min 05 s`.
 *
 * @param ms Milliseconds.
 * @returns The text.
 * @example
 * ```ts
 * import { formatDuration } from "./follow.ts";
 * if (formatDuration(245_000) !== "4 min 05 s") throw new Error(formatDuration(245_000));
 * ```
 */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

function capText(info: JobInfo): string {
  return info.bandwidth > 0 ? ` (cap ${formatBytes(info.bandwidth)}/s)` : " (no cap)";
}

interface View {
  update(info: JobInfo, rate: JobRate): void;
  event(event: CoreEvent): void;
  stop(info: JobInfo): void;
}

function jsonView(out: Output): View {
  return {
    update() {},
    event(event) {
      out.stdout.write(`${JSON.stringify(event)}\n`);
    },
    stop() {},
  };
}

/** Plain lines for logs: the first, one a second, and the last. */
function lineView(out: Output): View {
  let lastAtMs = Number.NEGATIVE_INFINITY;
  let lastRate: JobRate | undefined;
  return {
    update(info, rate) {
      lastRate = rate;
      const now = Date.now();
      if (now - lastAtMs < 1000) return;
      lastAtMs = now;
      out.stderr.write(`${describeJob(info, rate)}\n`);
    },
    event() {},
    stop(info) {
      out.stderr.write(`${describeJob(info, lastRate)}\n`);
    },
  };
}

function barView(out: Output, label: string | undefined): View {
  const bar = new cliProgress.SingleBar({
    stream: out.stderr as NodeJS.WriteStream,
    format: "{label} |{bar}| {percentage}% {bytes} | {rate} | {eta_text}",
    barsize: 24,
    hideCursor: true,
    clearOnComplete: false,
    etaBuffer: 1, // ETA is ours (payload), not cli-progress' linear guess over cur
    fps: 10,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  const payload = (info: JobInfo, rate: JobRate | undefined) => ({
    label: label ?? `${info.id} ${info.type}`,
    bytes: `${formatBytes(info.cur)} / ${formatBytes(info.end)}`,
    rate: rate && rate.bytesPerSecond > 0
      ? `${formatBytes(rate.bytesPerSecond)}/s${capText(info)}`
      : info.bandwidth > 0 ? `cap ${formatBytes(info.bandwidth)}/s` : "no cap",
    eta_text: rate?.etaMs === undefined ? "ETA -" : `ETA ${formatDuration(rate.etaMs)}`,
  });
  let lastRate: JobRate | undefined;
  return {
    update(info, rate) {
      lastRate = rate;
      if (!started) {
        bar.start(Math.max(1, info.end), info.cur, payload(info, rate));
        started = true;
      } else bar.update(info.cur, payload(info, rate));
      if (info.end > 0) bar.setTotal(info.end);
    },
    event() {},
    stop(info) {
      if (started) {
        bar.update(info.cur, { ...payload(info, lastRate), eta_text: info.state });
        bar.stop();
      }
    },
  };
}
