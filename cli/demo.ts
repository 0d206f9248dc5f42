/**
 * `virtkit demo`: user story 1 end to end on the built-in `test:///default` driver. A thin disk is created
 * over the template, a VM is defined on it and started at once, and the disk is pulled from its template
 * in the background under a bandwidth cap that is raised half-way, with progress and the outcome read
 * from events.
 *
 * @module
 */
import type { Connection } from "../core/connection.ts";
import { formatBytes, MiB } from "../core/units.ts";
import { describeJob } from "./follow.ts";

/** Where the demo writes its lines. */
export type Print = (line: string) => void;

/** Options of {@linkcode runDemo}. */
export interface DemoOptions {
  /** Initial cap in bytes per second (default 64 MiB/s); doubled half-way. */
  bandwidth?: number;
  /** Name of the VM to provision (default `"web1"`). */
  name?: string;
}

/**
 * Provisions a VM from the template and pulls its disk, printing what happens.
 *
 * @param conn A connection that has the `default-pool` pool with a `template.img` volume.
 * @param print Output.
 * @param options Cap and VM name.
 * @returns The final state of the pull job.
 * @example
 * ```ts
 * import { connect, MiB } from "../mod.ts";
 * import { runDemo } from "./demo.ts";
 * await using conn = await connect("test:///default");
 * const state = await runDemo(conn, () => {}, { bandwidth: MiB(512) });
 * if (state !== "completed") throw new Error(state);
 * ```
 */
export async function runDemo(conn: Connection, print: Print, options: DemoOptions = {}): Promise<string> {
  const name = options.name ?? "web1";
  const bandwidth = options.bandwidth ?? MiB(64);
  const pool = await conn.pools.get("default-pool");
  const template = await pool.volumes.get("template.img");
  const templateInfo = await template.info();
  print(`template ${template.path}: ${formatBytes(templateInfo.capacityBytes)} ${templateInfo.format}, ${formatBytes(templateInfo.allocationBytes)} allocated`);

  const disk = await pool.volumes.create({
    name: `${name}.qcow2`,
    capacityBytes: templateInfo.capacityBytes,
    format: "qcow2",
    backing: { path: template.path, format: templateInfo.format },
  });
  print(`created thin volume ${disk.path} over the template (${formatBytes((await disk.info()).allocationBytes)} allocated)`);
  const dom = await conn.domains.define({
    name,
    vcpus: 2,
    memoryBytes: MiB(1024),
    disks: [{ target: "vda", volume: { pool: pool.name, name: disk.name } }],
  });
  await dom.start();
  print(`domain ${name} is ${(await dom.info()).state}: it boots from the thin disk at once`);

  const job = await dom.blockPull("vda", { bandwidth });
  print(`block pull ${job.id} started at ${formatBytes(bandwidth)}/s`);
  let raised = false;
  const offProgress = conn.events.on("job:progress", (event) => {
    if (event.job.id !== job.id) return;
    print(`  ${describeJob(event.job)}`);
    if (!raised && event.job.cur >= event.job.end / 2) {
      raised = true;
      job.setSpeed(bandwidth * 2).then(
        () => print(`  cap raised to ${formatBytes(bandwidth * 2)}/s`),
        (error: unknown) => print(`  could not raise the cap: ${String(error)}`),
      );
    }
  });
  const outcome = conn.events.next("job:*", {
    filter: (event) =>
      event.job.id === job.id && ["job:completed", "job:failed", "job:aborted"].includes(event.type),
  });
  const ended = await outcome;
  offProgress();
  print(`event ${ended.type}: ${describeJob(ended.job)}`);
  const [vda] = await dom.disks();
  print(`vda backing chain after the pull: ${vda && vda.backingChain.length === 0 ? "none (the VM no longer depends on the template)" : JSON.stringify(vda?.backingChain)}`);
  return ended.job.state;
}
