/**
 * Storage pool commands, with virsh's names: `pool-list`, `pool-info`, `pool-define-as`,
 * `pool-create-as`, `pool-build`, `pool-start`, `pool-destroy`, `pool-delete`, `pool-undefine`,
 * `pool-refresh`, `pool-autostart`.
 *
 * @module
 */
import type { PoolConfig } from "../../core/storage_pool.ts";
import { formatBytes } from "../../core/units.ts";
import type { CommandSpec, OptionSpec } from "../spec.ts";
import { UsageError } from "../usage.ts";

const POOL = { name: "POOL", description: "pool name" } as const;

const SOURCE_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  target: { type: "string", value: "PATH", description: "dir: the directory holding the volumes" },
  "source-host": { type: "string", value: "HOST", description: "iscsi: the portal's host" },
  "source-port": { type: "string", value: "PORT", description: "iscsi: the portal's port (default 3260)" },
  "source-dev": { type: "string", value: "DEV", description: "iscsi: the target IQN; logical: a physical volume (device path)" },
  vg: { type: "string", value: "VG", description: "logical: the volume group (default: the pool name)" },
};

/** Builds a PoolConfig from `pool-define-as NAME TYPE` and its source options. */
function poolConfig(name: string, type: string, options: Readonly<Record<string, string | boolean | undefined>>): PoolConfig {
  const text = (key: string) => options[key] as string | undefined;
  const need = (key: string) => {
    const value = text(key);
    if (value === undefined) throw new UsageError(`A ${type} pool needs --${key}`);
    return value;
  };
  const allowed: Record<string, readonly string[]> = {
    dir: ["target"],
    logical: ["vg", "source-dev"],
    iscsi: ["source-host", "source-port", "source-dev"],
    memory: [],
  };
  const keys = Object.keys(SOURCE_OPTIONS).filter((key) => options[key] !== undefined);
  const fits = allowed[type];
  if (fits) {
    const stray = keys.find((key) => !fits.includes(key));
    if (stray) throw new UsageError(`--${stray} does not apply to a ${type} pool (it takes ${fits.map((k) => `--${k}`).join(", ") || "no source options"})`);
  }
  switch (type) {
    case "dir":
      return { name, type, path: need("target") };
    case "logical": {
      const device = text("source-dev");
      return { name, type, volumeGroup: text("vg") ?? name, ...(device === undefined ? {} : { devices: [device] }) };
    }
    case "iscsi": {
      const port = text("source-port");
      if (port !== undefined && !/^\d{1,5}$/.test(port)) throw new UsageError(`Invalid --source-port "${port}": expected a port number`);
      return { name, type, host: need("source-host"), target: need("source-dev"), ...(port === undefined ? {} : { port: Number(port) }) };
    }
    case "memory":
      return { name, type };
    default:
      // A plugin's pool type: pass what was given, by the option's name.
      return { name, type, ...Object.fromEntries(keys.map((key) => [key, options[key]])) };
  }
}

function poolVerb(name: string, verb: "build" | "start" | "stop" | "delete" | "undefine" | "refresh", summary: string, done: string): CommandSpec {
  return {
    name,
    group: "Storage pools",
    summary,
    args: [POOL],
    examples: [`${name} images`],
    async run({ connect, args, out }) {
      const pool = await (await connect()).pools.get(args.POOL!);
      await pool[verb]();
      out.result({ pool: pool.name, [verb]: true }, () => [`Pool ${pool.name} ${done}`]);
    },
  };
}

function defineAs(name: "pool-define-as" | "pool-create-as", summary: string): CommandSpec {
  return {
    name,
    group: "Storage pools",
    summary,
    args: [POOL, { name: "TYPE", description: "dir, logical, iscsi, memory, or a plugin's type" }],
    options: SOURCE_OPTIONS,
    examples: [`${name} images dir --target /var/lib/virtkit/images`, `${name} vg0 logical --vg vg0 --source-dev /dev/sdb`],
    async run({ connect, args, options, out }) {
      const config = poolConfig(args.POOL!, args.TYPE!, options);
      const pools = (await connect()).pools;
      const pool = name === "pool-create-as" ? await pools.create(config) : await pools.define(config);
      out.result(config, () => [`Pool ${pool.name} ${name === "pool-create-as" ? "created" : "defined"}`]);
    },
  };
}

/** Autostart where the pool reports it (`info().autostart`, once pools persist it). */
function autostartOf(info: object): boolean | undefined {
  const value = (info as { autostart?: unknown }).autostart;
  return typeof value === "boolean" ? value : undefined;
}

/** The pool commands. */
export const POOL_COMMANDS: readonly CommandSpec[] = [
  {
    name: "pool-list",
    group: "Storage pools",
    summary: "list active pools (all with --all)",
    args: [],
    options: { all: { type: "boolean", description: "include inactive pools" } },
    examples: ["pool-list --all"],
    async run({ connect, options, out }) {
      const pools = await (await connect()).pools.list();
      const rows = await Promise.all(pools.map(async (pool) => ({ name: pool.name, type: pool.type, ...(await pool.info()) })));
      const shown = options.all ? rows : rows.filter((row) => row.state === "active");
      out.table(shown, [
        { header: "Name", cell: (r) => r.name },
        { header: "State", cell: (r) => r.state },
        { header: "Type", cell: (r) => r.type },
        { header: "Autostart", cell: (r) => ({ true: "yes", false: "no", undefined: "-" })[String(autostartOf(r)) as "true"] },
        { header: "Available", cell: (r) => (r.state === "active" ? formatBytes(r.availableBytes) : "-") },
      ]);
    },
  },
  {
    name: "pool-info",
    group: "Storage pools",
    summary: "show a pool's state, type and sizes",
    args: [POOL],
    examples: ["pool-info default-pool"],
    async run({ connect, args, out }) {
      const pool = await (await connect()).pools.get(args.POOL!);
      const info = await pool.info();
      const autostart = autostartOf(info);
      out.result({ name: pool.name, type: pool.type, ...info, config: await pool.config() }, () => [
        `Name:           ${pool.name}`,
        `Type:           ${pool.type}`,
        `State:          ${info.state}`,
        ...(autostart === undefined ? [] : [`Autostart:      ${autostart ? "yes" : "no"}`]),
        `Capacity:       ${formatBytes(info.capacityBytes)}`,
        `Allocation:     ${formatBytes(info.allocationBytes)}`,
        `Available:      ${formatBytes(info.availableBytes)}`,
      ]);
    },
  },
  defineAs("pool-define-as", "define a pool from its type and source (not started)"),
  defineAs("pool-create-as", "define, build and start a pool in one step"),
  poolVerb("pool-build", "build", "build a pool (create its directory, volume group, ...)", "built"),
  poolVerb("pool-start", "start", "start (activate) a pool", "started"),
  poolVerb("pool-destroy", "stop", "stop (deactivate) a pool; its volumes stay", "destroyed"),
  poolVerb("pool-delete", "delete", "delete a stopped pool's storage (the directory, the volume group)", "deleted"),
  poolVerb("pool-undefine", "undefine", "remove a stopped pool's definition", "has been undefined"),
  poolVerb("pool-refresh", "refresh", "rescan a pool's volumes", "refreshed"),
  {
    name: "pool-autostart",
    group: "Storage pools",
    summary: "start a pool after the host boots (--disable to stop that)",
    args: [POOL],
    options: { disable: { type: "boolean", description: "turn autostart off" } },
    examples: ["pool-autostart images", "pool-autostart images --disable"],
    async run({ connect, args, options, out }) {
      const pool = await (await connect()).pools.get(args.POOL!);
      const on = options.disable !== true;
      await pool.setAutostart(on);
      out.result({ pool: pool.name, autostart: on }, () => [`Pool ${pool.name} ${on ? "marked as autostarted" : "unmarked as autostarted"}`]);
    },
  },
];
