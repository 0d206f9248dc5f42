/**
 * The `virtkit` subcommands (virsh-like), each a function of a connection and its arguments that writes
 * plain text through `print`.
 *
 * @module
 */
import type { Connection } from "../core/connection.ts";
import type { Job, JobInfo } from "../core/job.ts";
import { formatBytes, parseBytes } from "../core/units.ts";
import type { ParsedArgs } from "./args.ts";

/** Where a command writes its output lines. */
export type Print = (line: string) => void;

/** One subcommand. */
export interface Command {
  /** Usage line shown by `help`. */
  readonly usage: string;
  /** Runs it. */
  run(conn: Connection, args: ParsedArgs, print: Print): Promise<void>;
}

function need(args: ParsedArgs, index: number, what: string): string {
  const value = args.positional[index];
  if (value === undefined) throw new TypeError(`Missing ${what}`);
  return value;
}

/**
 * One line describing a job's progress: `job-1 block-pull running 128 MiB / 256 MiB (50%) 64 MiB/s eta 2.0 s`.
 *
 * @param info A job snapshot.
 * @returns The line.
 * @example
 * ```ts
 * import { describeJob } from "./commands.ts";
 * const line = describeJob({ id: "job-1", type: "block-pull", state: "running", target: {}, cur: 50, end: 100, bandwidth: 0, bytesPerSecond: 0, createdAt: 0 });
 * if (!line.includes("50%")) throw new Error(line);
 * ```
 */
export function describeJob(info: JobInfo): string {
  const percent = info.end > 0 ? Math.floor((info.cur / info.end) * 100) : 100;
  const rate = info.bytesPerSecond > 0 ? ` ${formatBytes(info.bytesPerSecond)}/s` : "";
  const eta = info.etaMs !== undefined ? ` eta ${(info.etaMs / 1000).toFixed(1)} s` : "";
  const error = info.error ? ` error: ${info.error}` : "";
  return `${info.id} ${info.type} ${info.state} ${formatBytes(info.cur)} / ${formatBytes(info.end)} (${percent}%)${rate}${eta}${error}`;
}

/**
 * Prints a job's progress events until it ends, then its outcome; resolves to the final state.
 *
 * @param conn The connection the job runs on.
 * @param job The job to follow.
 * @param print Output.
 * @returns The final state.
 * @example
 * ```ts
 * import { connect } from "../mod.ts";
 * import { followJob } from "./commands.ts";
 * await using conn = await connect("test:///default");
 * const dom = await conn.domains.get("test");
 * const state = await followJob(conn, await dom.blockPull("vda"), () => {});
 * if (state !== "completed") throw new Error(state);
 * ```
 */
export async function followJob(conn: Connection, job: Job, print: Print): Promise<string> {
  const off = conn.events.on("job:progress", (event) => {
    if (event.job.id === job.id) print(describeJob(event.job));
  });
  try {
    await job.wait();
  } catch {
    // The outcome is printed below from the job's final info, failure included.
  } finally {
    off();
  }
  const info = await job.info();
  print(describeJob(info));
  return info.state;
}

/** The subcommands by name. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  list: {
    usage: "list                          domains and their states",
    async run(conn, _args, print) {
      for (const dom of await conn.domains.list()) {
        const info = await dom.info();
        print(`${info.name.padEnd(20)} ${info.state.padEnd(8)} ${info.vcpus} vCPU ${formatBytes(info.memoryBytes)}`);
      }
    },
  },
  domblklist: {
    usage: "domblklist DOMAIN             disks with their backing chains",
    async run(conn, args, print) {
      const dom = await conn.domains.get(need(args, 1, "domain name"));
      for (const disk of await dom.disks()) {
        const chain = disk.backingChain.map((layer) => ` <- ${layer.path} (${layer.format})`).join("");
        print(`${disk.target.padEnd(6)} ${disk.path} (${disk.format})${chain}`);
      }
    },
  },
  "pool-list": {
    usage: "pool-list                     storage pools",
    async run(conn, _args, print) {
      for (const pool of await conn.pools.list()) {
        const info = await pool.info();
        print(`${pool.name.padEnd(20)} ${pool.type.padEnd(8)} ${info.state.padEnd(8)} ${formatBytes(info.availableBytes)} free`);
      }
    },
  },
  "vol-list": {
    usage: "vol-list POOL                 volumes of a pool",
    async run(conn, args, print) {
      const pool = await conn.pools.get(need(args, 1, "pool name"));
      for (const volume of await pool.volumes.list()) {
        const info = await volume.info();
        const backing = info.backing ? ` over ${info.backing.path}` : "";
        print(`${volume.name.padEnd(24)} ${info.format.padEnd(6)} ${formatBytes(info.capacityBytes)} (${formatBytes(info.allocationBytes)} allocated)${backing}`);
      }
    },
  },
  blockpull: {
    usage: "blockpull DOMAIN DISK [--bandwidth 64M] [--wait]   fill a disk from its backing chain",
    async run(conn, args, print) {
      const dom = await conn.domains.get(need(args, 1, "domain name"));
      const bandwidthText = args.options.get("bandwidth");
      const job = await dom.blockPull(need(args, 2, "disk target"), {
        bandwidth: bandwidthText === undefined ? undefined : parseBytes(bandwidthText),
      });
      print(`started ${job.id}`);
      if (args.options.has("wait") && (await followJob(conn, job, print)) !== "completed") {
        throw new Error(`Job ${job.id} did not complete`);
      }
    },
  },
  "job-list": {
    usage: "job-list                      every job of the connection",
    async run(conn, _args, print) {
      for (const job of await conn.jobs.list()) print(describeJob(await job.info()));
    },
  },
};
