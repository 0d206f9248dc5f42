/**
 * Every `virtkit` command, in the order `virtkit --help` lists them.
 *
 * @module
 */
import { runDemo } from "../demo.ts";
import type { CommandSpec } from "../spec.ts";
import { BLOCK_COMMANDS } from "./blockjobs.ts";
import { DOMAIN_COMMANDS } from "./domains.ts";
import { jobBandwidth, JOB_OPTIONS } from "./job_run.ts";
import { JOB_COMMANDS } from "./jobs.ts";
import { POOL_COMMANDS } from "./pools.ts";
import { TRANSFER_COMMANDS } from "./transfer.ts";
import { VOLUME_COMMANDS } from "./volumes.ts";

const DEMO: CommandSpec = {
  name: "demo",
  group: "Other",
  summary: "provision a VM from a template on the in-memory test driver and pull its disk (user story 1)",
  args: [],
  options: { bandwidth: JOB_OPTIONS.bandwidth!, bytes: JOB_OPTIONS.bytes! },
  examples: ["demo", "demo --bandwidth 512"],
  async run(ctx) {
    const bandwidth = jobBandwidth(ctx);
    const state = await runDemo(await ctx.connect(), (line) => ctx.out.line(line), bandwidth === undefined ? {} : { bandwidth });
    return state === "completed" ? 0 : 1;
  },
};

/** The commands. */
export const COMMANDS: readonly CommandSpec[] = [
  ...DOMAIN_COMMANDS,
  ...POOL_COMMANDS,
  ...VOLUME_COMMANDS,
  ...TRANSFER_COMMANDS,
  ...BLOCK_COMMANDS,
  ...JOB_COMMANDS,
  DEMO,
];
