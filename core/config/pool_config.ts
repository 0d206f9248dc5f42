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
import { IscsiChapAuthSchema, iscsiNameSchema } from "./iscsi_auth.ts";

export { IscsiChapAuthSchema } from "./iscsi_auth.ts";
export type { IscsiChapAuth, IscsiPoolAuth, IscsiSecretRef } from "./iscsi_auth.ts";

// LVM2's rules for a volume group or logical volume name: letters, digits and +_.-, not starting with -.
const VG_NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/;

const common = {
  /** Pool name: 1 to 255 characters, no `/`. */
  name: nameSchema(255),
  /** libvirt's UUID of the pool, kept when the definition came with one. */
  uuid: v.optional(uuidSchema),
};

/**
 * A directory of image files: `path` is the absolute directory.
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { DirPoolConfigSchema } from "virtkit";
 * if (!v.is(DirPoolConfigSchema, { name: "images", type: "dir", path: "/var/lib/images" }) || v.is(DirPoolConfigSchema, { name: "images", type: "dir", path: "images" })) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export const DirPoolConfigSchema = v.strictObject({
  ...common,
  /** Pool type. */
  type: v.literal("dir"),
  /** Absolute path of the directory. */
  path: absolutePathSchema,
});

/**
 * A name LVM2 accepts for a volume group or logical volume (lvm(8) "VALID NAMES"): letters, digits and
 * `+_.-`, not starting with `-`, not `.` or `..`, at most 127 characters. Checked at define, so a bad
 * name is a `TypeError` naming the field instead of a tool error at build.
 *
 * @param what The field, for the message.
 * @returns The schema.
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { lvmNameSchema } from "./pool_config.ts";
 * if (!v.is(lvmNameSchema("volumeGroup"), "vg0") || v.is(lvmNameSchema("volumeGroup"), "-vg")) throw new Error("unexpected");
 * ```
 */
export function lvmNameSchema(what: string) {
  return v.pipe(
    v.string(`${what} must be a string`),
    v.minLength(1, `${what} is empty`),
    v.maxLength(127, `${what} is longer than 127 characters`),
    v.check((name) => VG_NAME.test(name), `${what} may hold only letters, digits and "+_.-", and not start with "-"`),
    v.check((name) => name !== "." && name !== "..", `${what} may not be "." or ".."`),
  );
}

/**
 * An LVM volume group: `volumeGroup`, the physical `devices` that `build()` puts in it (each once), and
 * an optional `thinPool` (a thin pool LV of the group: new volumes are thin volumes in it; default:
 * linear volumes).
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { LogicalPoolConfigSchema } from "virtkit";
 * if (!v.is(LogicalPoolConfigSchema, { name: "vg", type: "logical", volumeGroup: "vg0", devices: ["/dev/sdb"] })) throw new Error("unexpected");
 * if (v.is(LogicalPoolConfigSchema, { name: "vg", type: "logical", volumeGroup: "vg0", devices: ["/dev/sdb", "/dev/sdb"] })) throw new Error("unexpected");
 * ```
 */
export const LogicalPoolConfigSchema = v.strictObject({
  ...common,
  /** Always `"logical"`. */
  type: v.literal("logical"),
  /** The volume group's name. */
  volumeGroup: lvmNameSchema("volumeGroup"),
  /** The physical devices `build()` puts in the group, each once. */
  devices: v.optional(
    v.pipe(
      v.array(absolutePathSchema),
      v.check((devices) => new Set(devices).size === devices.length, "it lists a device twice"),
    ),
  ),
  /** A thin pool LV of the group: new volumes are thin volumes in it. */
  thinPool: v.optional(lvmNameSchema("thinPool")),
});

// A host name, an IPv4 address, or an IPv6 address without brackets.
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$/;

/**
 * The LUNs of an iSCSI target: portal `host` and `port` (default 3260), target IQN `target`, our
 * `initiator` IQN (default: one per host, chosen by the backend) and optional CHAP `auth` (see
 * {@linkcode IscsiChapAuthSchema}: a password, or a secret of the peer naming it).
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { IscsiPoolConfigSchema } from "virtkit";
 * if (v.is(IscsiPoolConfigSchema, { name: "san", type: "iscsi", host: "10.0.0.5", port: 70000, target: "iqn.2026-01.org.example:a" })) throw new Error("unexpected");
 * if (!v.is(IscsiPoolConfigSchema, { name: "san", type: "iscsi", host: "10.0.0.5", target: "iqn.2026-01.org.example:a" })) throw new Error("unexpected");
 * ```
 */
export const IscsiPoolConfigSchema = v.strictObject({
  ...common,
  /** Always `"iscsi"`. */
  type: v.literal("iscsi"),
  /** The portal's host name or address. */
  host: v.pipe(
    v.string("host must be a string"),
    v.nonEmpty("host is empty"),
    v.maxLength(253, "host is longer than 253 characters"),
    v.regex(HOST, "host must be a host name or an IP address (no port, no brackets)"),
  ),
  /** The portal's TCP port (default 3260). */
  port: v.optional(integerSchema(1, 65535)),
  /** The target's IQN. */
  target: iscsiNameSchema("target"),
  /** Our initiator IQN (default: one per host). */
  initiator: v.optional(iscsiNameSchema("initiator")),
  /** CHAP credentials, when the target requires them. */
  auth: v.optional(IscsiChapAuthSchema),
});

/**
 * The `test` driver's in-memory pool: optional `capacityBytes` (default 100 GiB).
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { MemoryPoolConfigSchema } from "virtkit";
 * if (!v.is(MemoryPoolConfigSchema, { name: "scratch", type: "memory", capacityBytes: 2 ** 30 })) throw new Error("unexpected");
 * ```
 */
export const MemoryPoolConfigSchema = v.strictObject({
  ...common,
  /** Pool type. */
  type: v.literal("memory"),
  /** Capacity in bytes (default 100 GiB, like libvirt's test driver). */
  capacityBytes: v.optional(bytesSchema(1)),
});

/**
 * What every pool definition has, whatever its type (a plugin's type adds its own fields).
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { BasePoolConfigSchema } from "./pool_config.ts";
 * if (!v.is(BasePoolConfigSchema, { name: "s", type: "scratch", sizeBytes: 1 }) || v.is(BasePoolConfigSchema, { name: "s" })) throw new Error("unexpected");
 * ```
 */
export const BasePoolConfigSchema = v.looseObject({
  /** Pool name. */
  name: nameSchema(255),
  /** Backend name. */
  type: nameSchema(64),
});

/**
 * The schemas of the built-in pool types, by type.
 *
 * @example
 * ```ts
 * import { BUILTIN_POOL_SCHEMAS } from "./pool_config.ts";
 * if (Object.keys(BUILTIN_POOL_SCHEMAS).join() !== "dir,logical,iscsi,memory") throw new Error("unexpected");
 * ```
 */
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
 * import { checkPoolConfig } from "virtkit";
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
