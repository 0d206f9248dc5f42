/**
 * The `logical` pool definition as a valibot schema, and the LVM2 name rules it and the volume names
 * follow (lvm(8) "VALID NAMES"), so a bad name fails at define with a `TypeError` instead of as a tool
 * error at build.
 *
 * @module
 */
import * as v from "valibot";
import type { LogicalPoolConfig, PoolConfig } from "../../core/storage_pool.ts";

/** Characters LVM2 accepts in VG and LV names; a name may not start with `-`. */
const LVM_NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/;
/** LVM2's longest VG or LV name. */
const LVM_NAME_MAX = 127;
/** LV names LVM2 keeps for its own sub-volumes. */
const RESERVED_LV_PREFIXES = ["snapshot", "pvmove"];
const RESERVED_LV_PARTS = ["_cdata", "_cmeta", "_corig", "_mlog", "_mimage", "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vorigin", "_vdata"];

const lvmName = (what: string) =>
  v.pipe(
    v.string(`${what} must be a string`),
    v.minLength(1, `${what} is empty`),
    v.maxLength(LVM_NAME_MAX, `${what} is longer than ${LVM_NAME_MAX} characters`),
    v.regex(LVM_NAME, `${what} may hold only letters, digits and "+_.-", and not start with "-"`),
    v.check((name) => name !== "." && name !== "..", `${what} may not be "." or ".."`),
  );

/** The schema of `{ name, type: "logical", volumeGroup, devices?, thinPool? }`; unknown fields are refused. */
export const logicalPoolConfigSchema = v.strictObject({
  name: v.string(),
  type: v.literal("logical"),
  volumeGroup: lvmName("volumeGroup"),
  devices: v.optional(
    v.pipe(
      v.array(
        v.pipe(
          v.string("a device must be a path"),
          v.startsWith("/", "a device must be an absolute path"),
          v.check((device) => !device.includes("\0"), "a device path may not contain NUL"),
        ),
        "devices must be an array of paths",
      ),
      v.check((devices) => new Set(devices).size === devices.length, "devices lists a device twice"),
    ),
  ),
  thinPool: v.optional(lvmName("thinPool")),
});

/**
 * Checks a `logical` pool definition against {@linkcode logicalPoolConfigSchema}.
 *
 * @param config The definition (name and type are checked by core).
 * @returns The same definition, typed.
 * @throws {TypeError} Naming the pool, the field and what is wrong.
 * @example
 * ```ts
 * import { validateLogicalPoolConfig } from "./config.ts";
 * validateLogicalPoolConfig({ name: "vg", type: "logical", volumeGroup: "vg0", devices: ["/dev/loop0"] });
 * let message = "";
 * try { validateLogicalPoolConfig({ name: "vg", type: "logical", volumeGroup: "-bad" }); } catch (e) { message = String(e); }
 * if (!message.includes("volumeGroup")) throw new Error("unexpected");
 * ```
 */
export function validateLogicalPoolConfig(config: PoolConfig): LogicalPoolConfig {
  const result = v.safeParse(logicalPoolConfigSchema, config);
  if (result.success) return result.output as LogicalPoolConfig;
  const issue = result.issues[0];
  const field = v.getDotPath(issue) ?? "config";
  throw new TypeError(`Invalid ${field} for pool "${String(config?.name)}": ${issue.message}`);
}

/**
 * Checks a volume name against LVM2's LV name rules.
 *
 * @param name The volume name (core has checked it is a sane name).
 * @throws {TypeError} When LVM2 would refuse it.
 * @example
 * ```ts
 * import { assertLvName } from "./config.ts";
 * assertLvName("disk-1");
 * let threw = false;
 * try { assertLvName("data_tmeta"); } catch { threw = true; }
 * if (!threw) throw new Error("unexpected");
 * ```
 */
export function assertLvName(name: string): void {
  const result = v.safeParse(lvmName("logical volume name"), name);
  if (!result.success) throw new TypeError(`Invalid volume name "${name}": ${result.issues[0].message}`);
  if (RESERVED_LV_PREFIXES.some((prefix) => name.startsWith(prefix)) || RESERVED_LV_PARTS.some((part) => name.includes(part))) {
    throw new TypeError(`Invalid volume name "${name}": LVM2 reserves names starting with ${RESERVED_LV_PREFIXES.join(" or ")} or containing ${RESERVED_LV_PARTS.join(", ")}`);
  }
}
