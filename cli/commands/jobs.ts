/**
 * The one job list and the event bus from the command line: `jobs`, `job-info`, `job-abort`,
 * `job-pause`, `job-resume`, `job-dismiss`, `events`.
 *
 * @module
 */
import { TERMINAL_JOB_STATES } from "../../core/job.ts";
import { formatBytes } from "../../core/units.ts";
import { describeJob } from "../follow.ts";
import type { CommandSpec } from "../spec.ts";
import { UsageError } from "../usage.ts";
import { parseCountArg } from "../values.ts";

const ID = { name: "ID", description: "job id (from jobs)" } as const;

function jobVerb(name: string, verb: "abort" | "pause" | "resume" | "dismiss", summary: string, done: string): CommandSpec {
  return {
    name,
    group: "Jobs and events",
    summary,
    args: [ID],
    examples: [`${name} job-1`],
    async run({ connect, args, out }) {
      const job = await (await connect()).jobs.get(args.ID!);
      await job[verb]();
      out.result({ id: job.id, [verb]: true }, () => [`${job.id} ${done}`]);
    },
  };
}

/** The job and event commands. */
export const JOB_COMMANDS: readonly CommandSpec[] = [
  {
    name: "jobs",
    group: "Jobs and events",
    summary: "list the connection's unfinished jobs (finished ones too with --all)",
    args: [],
    options: { all: { type: "boolean", description: "include completed, failed and aborted jobs" } },
    examples: ["jobs", "-c qemu:///session jobs --all --json"],
    async run({ connect, options, out }) {
      const jobs = await (await connect()).jobs.list();
      const infos = await Promise.all(jobs.map((job) => job.info()));
      const shown = options.all ? infos : infos.filter((info) => !TERMINAL_JOB_STATES.includes(info.state));
      out.table(shown, [
        { header: "Id", cell: (i) => i.id },
        { header: "Type", cell: (i) => i.type },
        { header: "State", cell: (i) => i.state },
        { header: "Target", cell: (i) => [i.target.domain, i.target.disk, i.target.pool, i.target.volume].filter(Boolean).join("/") },
        { header: "Progress", cell: (i) => `${i.end > 0 ? Math.floor((i.cur / i.end) * 100) : 0}% of ${formatBytes(i.end)}` },
        { header: "Cap", cell: (i) => (i.bandwidth > 0 ? `${formatBytes(i.bandwidth)}/s` : "none") },
      ]);
    },
  },
  {
    name: "job-info",
    group: "Jobs and events",
    summary: "show one job: state, progress, rate, cap, error",
    args: [ID],
    examples: ["job-info job-1"],
    async run({ connect, args, out }) {
      const info = await (await (await connect()).jobs.get(args.ID!)).info();
      out.result(info, () => [describeJob(info)]);
    },
  },
  jobVerb("job-abort", "abort", "abort a job (its target stays consistent)", "aborted"),
  jobVerb("job-pause", "pause", "pause a running job", "paused"),
  jobVerb("job-resume", "resume", "resume a paused job", "resumed"),
  jobVerb("job-dismiss", "dismiss", "remove a finished job from the list", "dismissed"),
  {
    name: "events",
    group: "Jobs and events",
    summary: "print the connection's recent events (and new ones with --follow)",
    args: [],
    options: {
      follow: { type: "boolean", description: "keep printing new events until Ctrl-C" },
      since: { type: "string", value: "SEQ", description: "only events after this sequence number" },
      type: { type: "string", value: "PATTERN", description: 'only these: a type ("job:completed") or a wildcard ("job:*")' },
    },
    examples: ["events --type 'job:*' --follow", "events --since 120 --json"],
    async run({ connect, options, out, signal }) {
      const conn = await connect();
      const until = options.follow ? Number.POSITIVE_INFINITY : conn.events.lastSeq;
      const since = typeof options.since === "string" ? parseCountArg(options.since, "--since") : 0;
      if (since >= until) return;
      const wanted = typeof options.type === "string" ? matcher(options.type) : () => true;
      // Every event is read (and filtered here) so the replay ends at the last one buffered now.
      for await (const event of conn.events.subscribe({ since, signal })) {
        if (event.type === "gap" || wanted(event.type)) {
          out.stdout.write(out.json ? `${JSON.stringify(event)}\n` : `${event.seq} ${event.type} ${summary(event)}\n`);
        }
        if (event.seq >= until) break;
      }
    },
  },
];

/** `job:completed`, `job:*` or `*`, as the bus reads patterns. */
function matcher(pattern: string): (type: string) => boolean {
  if (pattern === "*") return () => true;
  if (pattern.endsWith(":*")) return (type) => type.startsWith(pattern.slice(0, -1));
  if (!/^[^:*]+:[^*]+$/.test(pattern)) throw new UsageError(`Invalid --type "${pattern}": expected a type ("job:completed"), "<prefix>:*" or "*"`);
  return (type) => type === pattern;
}

function summary(event: object): string {
  const e = event as { job?: Parameters<typeof describeJob>[0]; domain?: string; pool?: string; volume?: string; missed?: number };
  if (e.job) return describeJob(e.job);
  if (e.missed !== undefined) return `${e.missed} events missed`;
  return [e.domain, e.pool, e.volume].filter(Boolean).join("/");
}
