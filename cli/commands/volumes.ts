/**
 * Volume commands, with virsh's names: `vol-list`, `vol-info`, `vol-create-as`, `vol-clone`,
 * `vol-wipe`, `vol-resize`, `vol-delete`, `vol-extents` (like `qemu-img map`). `vol-upload` and
 * `vol-download` are in transfer.ts.
 *
 * @module
 */
import type { BackingRef } from "../../core/volume.ts";
import { formatBytes } from "../../core/units.ts";
import type { CommandSpec, OptionSpec } from "../spec.ts";
import { UsageError } from "../usage.ts";
import { parseSizeArg } from "../values.ts";
import { finishJob, JOB_OPTIONS, jobBandwidth } from "./job_run.ts";
import { findVolume, POOL_OPTION, VOL_ARG } from "./volume_ref.ts";

const FORMAT_OPTION: OptionSpec = { type: "string", value: "FORMAT", description: "raw or qcow2" };

function format(text: string | boolean | undefined): "raw" | "qcow2" | undefined {
  if (text === undefined) return undefined;
  if (text !== "raw" && text !== "qcow2") throw new UsageError(`Invalid --format "${String(text)}": virtkit writes raw or qcow2`);
  return text;
}

/** The volume commands. */
export const VOLUME_COMMANDS: readonly CommandSpec[] = [
  {
    name: "vol-list",
    group: "Volumes",
    summary: "list a pool's volumes",
    args: [{ name: "POOL", description: "pool name" }],
    examples: ["vol-list default-pool"],
    async run({ connect, args, out }) {
      const volumes = await (await (await connect()).pools.get(args.POOL!)).volumes.list();
      const rows = await Promise.all(volumes.map(async (v) => ({ name: v.name, path: v.path, key: v.key, ...(await v.info()) })));
      out.table(rows, [
        { header: "Name", cell: (r) => r.name },
        { header: "Path", cell: (r) => r.path },
        { header: "Format", cell: (r) => r.format },
        { header: "Capacity", cell: (r) => formatBytes(r.capacityBytes) },
        { header: "Allocation", cell: (r) => formatBytes(r.allocationBytes) },
        { header: "Backing", cell: (r) => r.backing?.path ?? "-" },
      ]);
    },
  },
  {
    name: "vol-info",
    group: "Volumes",
    summary: "show a volume's format, capacity, allocation and backing file",
    args: [VOL_ARG],
    options: { pool: POOL_OPTION },
    examples: ["vol-info test.qcow2 --pool default-pool", "vol-info /var/lib/virtkit/images/web1.qcow2"],
    async run({ connect, args, options, out }) {
      const volume = await findVolume(await connect(), args.VOL!, options.pool as string | undefined);
      const info = await volume.info();
      out.result({ name: volume.name, pool: volume.pool, path: volume.path, key: volume.key, ...info }, () => [
        `Name:           ${volume.name}`,
        `Pool:           ${volume.pool}`,
        `Path:           ${volume.path}`,
        `Format:         ${info.format}`,
        `Capacity:       ${formatBytes(info.capacityBytes)}`,
        `Allocation:     ${formatBytes(info.allocationBytes)}`,
        `Physical:       ${formatBytes(info.physicalBytes)}`,
        `Backing:        ${info.backing ? `${info.backing.path} (${info.backing.format})` : "none"}`,
      ]);
    },
  },
  {
    name: "vol-create-as",
    group: "Volumes",
    summary: "create a volume (thin: nothing is allocated; a qcow2 may sit over a backing volume)",
    args: [{ name: "POOL", description: "pool name" }, { name: "NAME", description: "new volume's name" }, { name: "SIZE", description: "capacity: 100M, 1G, 512KiB, 20GiB" }],
    options: {
      format: FORMAT_OPTION,
      "backing-vol": { type: "string", value: "VOL", description: "backing volume: a name in POOL, or a path" },
      "backing-vol-format": { type: "string", value: "FORMAT", description: "the backing volume's format (probed when absent)" },
    },
    examples: ["vol-create-as default-pool web1.qcow2 20G --format qcow2 --backing-vol template.img"],
    async run({ connect, args, options, out }) {
      const capacityBytes = parseSizeArg(args.SIZE!, "SIZE", { min: 1 });
      const conn = await connect();
      const pool = await conn.pools.get(args.POOL!);
      let backing: BackingRef | undefined;
      const backingVol = options["backing-vol"] as string | undefined;
      if (backingVol !== undefined) {
        const source = backingVol.includes("/") ? await findVolume(conn, backingVol, undefined) : await pool.volumes.get(backingVol);
        backing = { path: source.path, format: (options["backing-vol-format"] as string | undefined) ?? (await source.info()).format };
      }
      const fmt = format(options.format) ?? (backing ? "qcow2" : undefined);
      const volume = await pool.volumes.create({ name: args.NAME!, capacityBytes, ...(fmt ? { format: fmt } : {}), ...(backing ? { backing } : {}) });
      out.result({ name: volume.name, pool: volume.pool, path: volume.path, key: volume.key }, () => [`Vol ${volume.name} created`]);
    },
  },
  {
    name: "vol-clone",
    group: "Volumes",
    summary: "copy a volume into a new one in the same pool (sparse, capped), following the job",
    args: [VOL_ARG, { name: "NEWNAME", description: "the copy's name" }],
    options: { pool: POOL_OPTION, format: FORMAT_OPTION, ...JOB_OPTIONS },
    examples: ["vol-clone template.img web2.img --pool default-pool --bandwidth 200"],
    async run(ctx) {
      const conn = await ctx.connect();
      const source = await findVolume(conn, ctx.args.VOL!, ctx.options.pool as string | undefined);
      const pool = await conn.pools.get(source.pool);
      const fmt = format(ctx.options.format);
      const job = await pool.volumes.clone(source, { name: ctx.args.NEWNAME!, bandwidth: jobBandwidth(ctx), ...(fmt ? { format: fmt } : {}) });
      return finishJob(ctx, conn, job, { wait: true });
    },
  },
  {
    name: "vol-wipe",
    group: "Volumes",
    summary: "overwrite a volume's data with zeros, following the job",
    args: [VOL_ARG],
    options: { pool: POOL_OPTION, ...JOB_OPTIONS },
    examples: ["vol-wipe old.img --pool default-pool"],
    async run(ctx) {
      const conn = await ctx.connect();
      const volume = await findVolume(conn, ctx.args.VOL!, ctx.options.pool as string | undefined);
      return finishJob(ctx, conn, await volume.wipe({ bandwidth: jobBandwidth(ctx) }), { wait: true });
    },
  },
  {
    name: "vol-resize",
    group: "Volumes",
    summary: "change a volume's capacity (shrinking needs --shrink)",
    args: [VOL_ARG, { name: "SIZE", description: "the new capacity: 100M, 1G, 20GiB" }],
    options: { pool: POOL_OPTION, shrink: { type: "boolean", description: "allow a smaller capacity (data past it is lost)" } },
    examples: ["vol-resize web1.qcow2 40G --pool default-pool"],
    async run({ connect, args, options, out }) {
      const capacityBytes = parseSizeArg(args.SIZE!, "SIZE", { min: 1 });
      const volume = await findVolume(await connect(), args.VOL!, options.pool as string | undefined);
      await volume.resize(capacityBytes, { shrink: options.shrink === true });
      out.result({ name: volume.name, capacityBytes }, () => [`Size of volume '${volume.name}' successfully changed to ${formatBytes(capacityBytes)}`]);
    },
  },
  {
    name: "vol-delete",
    group: "Volumes",
    summary: "delete a volume",
    args: [VOL_ARG],
    options: { pool: POOL_OPTION },
    examples: ["vol-delete web2.img --pool default-pool"],
    async run({ connect, args, options, out }) {
      const volume = await findVolume(await connect(), args.VOL!, options.pool as string | undefined);
      await volume.delete();
      out.result({ name: volume.name, deleted: true }, () => [`Vol ${volume.name} deleted`]);
    },
  },
  {
    name: "vol-extents",
    group: "Volumes",
    summary: "list which regions hold data, zeros or holes, and at which backing depth (like qemu-img map)",
    args: [VOL_ARG],
    options: { pool: POOL_OPTION },
    examples: ["vol-extents test.qcow2 --pool default-pool", "vol-extents /images/web1.qcow2 --json"],
    async run({ connect, args, options, out }) {
      const volume = await findVolume(await connect(), args.VOL!, options.pool as string | undefined);
      const extents = [];
      for await (const extent of volume.extents()) extents.push(extent);
      out.table(extents, [
        { header: "Offset", cell: (e) => `0x${e.offset.toString(16)}` },
        { header: "Length", cell: (e) => `0x${e.length.toString(16)}` },
        { header: "Size", cell: (e) => formatBytes(e.length) },
        { header: "Data", cell: (e) => String(e.data) },
        { header: "Zero", cell: (e) => String(e.zero) },
        { header: "Depth", cell: (e) => String(e.depth) },
      ]);
    },
  },
];
