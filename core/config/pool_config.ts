/**
 * The schemas of pool definitions, one per pool type virtkit ships a backend for, and the check that
 * every pool definition goes through (`conn.pools.define()`, `create()`, `defineXml()`, drivers'
 * initial pools). A plugin's backend brings its own schema (`configSchema` in `defineStorageBackend`).
 *
 * Every pool has `name` (1 to 255 characters, no `/`), `type`, and may keep libvirt's `uuid`.
 * Defaults: `iscsi` `port` 3260 when absent (left out of the config); `memory` `capacityBytes` 100 GiB
 * (the `test` driver applies it, like libvirt's test driver).
 *
 * @module
 */
import * as v from "valibot";
import { namedBy, parseConfig } from "./parse_config.ts";
import { absolutePathSchema, bytesSchema, integerSchema, nameSchema, uuidSchema } from "./rules.ts";

// LVM2's rules for a volume group name: letters, digits and +_.-, not starting with -, at most 127.
const VG_NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/;
// An iSCSI name (RFC 3720 iqn./eui./naa.) or a portal host: printable, no spaces.
const TOKEN = /^[!-~]{1,223}$/;

const common = { name: nameSchema(255), uuid: v.optional(uuidSchema) };

/** A directory of image files: `path` is the absolute directory. */
export const DirPoolConfigSchema = v.strictObject({ ...common, type: v.literal("dir"), path: absolutePathSchema });

/** An LVM volume group: `volumeGroup`, and the physical `devices` that `build()` puts in it. */
export const LogicalPoolConfigSchema = v.strictObject({
  ...common,
  type: v.literal("logical"),
  volumeGroup: v.pipe(v.string(), v.check((vg) => VG_NAME.test(vg), "it is not an LVM volume group name")),
  devices: v.optional(v.array(absolutePathSchema)),
});

/** The LUNs of an iSCSI target: portal `host` and `port` (default 3260), target IQN `target`. */
export const IscsiPoolConfigSchema = v.strictObject({
  ...common,
  type: v.literal("iscsi"),
  host: v.pipe(v.string(), v.check((h) => TOKEN.test(h), "it is not a host name or address")),
  port: v.optional(integerSchema(1, 65535)),
  target: v.pipe(v.string(), v.check((t) => TOKEN.test(t), "it is not an iSCSI target name (iqn....)")),
});

/** The `test` driver's in-memory pool: optional `capacityBytes` (default 100 GiB). */
export const MemoryPoolConfigSchema = v.strictObject({ ...common, type: v.literal("memory"), capacityBytes: v.optional(bytesSchema(1)) });

/** What every pool definition has, whatever its type (a plugin's type adds its own fields). */
export const BasePoolConfigSchema = v.looseObject({ name: nameSchema(255), type: nameSchema(64) });

/** The schemas of the built-in pool types, by type. */
export const BUILTIN_POOL_SCHEMAS: Readonly<Record<string, v.GenericSchema>> = Object.freeze({
  dir: DirPoolConfigSchema,
  logical: LogicalPoolConfigSchema,
  iscsi: IscsiPoolConfigSchema,
  memory: MemoryPoolConfigSchema,
});

/** A directory of image files. */
export type DirPoolConfig = v.InferOutput<typeof DirPoolConfigSchema>;
/** An LVM volume group. */
export type LogicalPoolConfig = v.InferOutput<typeof LogicalPoolConfigSchema>;
/** The LUNs of an iSCSI target. */
export type IscsiPoolConfig = v.InferOutput<typeof IscsiPoolConfigSchema>;
/** The `test` driver's in-memory pool. */
export type MemoryPoolConfig = v.InferOutput<typeof MemoryPoolConfigSchema>;
/** What any pool config has: a name and a type. */
export interface BasePoolConfig {
  /** Pool name. */
  name: string;
  /** Backend name. */
  type: string;
}
/** A pool backend type a plugin defines: any other `type` with its own fields. */
export interface OtherPoolConfig extends BasePoolConfig {
  /** Backend name. */
  type: string & {};
  /** Backend-specific settings. */
  [setting: string]: unknown;
}
/** What a pool is. */
export type PoolConfig = DirPoolConfig | LogicalPoolConfig | IscsiPoolConfig | MemoryPoolConfig | OtherPoolConfig;

/**
 * Checks a pool definition: name and type always; the fields of a built-in type by its schema; a
 * plugin's type by the `schema` given (its backend's `configSchema`), else only name and type.
 *
 * @param config What the user gave.
 * @param schema The schema of a plugin's pool type, when it has one.
 * @returns A checked copy.
 * @throws {TypeError} For a malformed or unknown field (the message names it).
 * @throws {RangeError} For a number out of range.
 * @example
 * ```ts
 * import { checkPoolConfig } from "./pool_config.ts";
 * checkPoolConfig({ name: "images", type: "dir", path: "/var/lib/images" });
 * let message = "";
 * try { checkPoolConfig({ name: "images", type: "dir", path: "images" }); } catch (error) { message = (error as Error).message; }
 * if (!message.includes("path") || !message.includes("absolute")) throw new Error(message);
 * ```
 */
export function checkPoolConfig<C extends BasePoolConfig = PoolConfig>(config: C, schema?: v.GenericSchema): C {
  const what = namedBy("pool config");
  const base = parseConfig(BasePoolConfigSchema, config, what);
  const own = schema ?? BUILTIN_POOL_SCHEMAS[base.type];
  return (own === undefined ? base : parseConfig(own, config, what)) as C;
}
