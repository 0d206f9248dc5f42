/**
 * The LVM2 rules for volume names (lvm(8) "VALID NAMES", and the sub-volume names LVM2 keeps for itself),
 * so a bad name fails at create with a `TypeError` instead of as a tool error. The pool definition's
 * schema is core's `LogicalPoolConfigSchema` (core/config/pool_config.ts), built on the same name rule.
 *
 * @module
 */
import * as v from "valibot";
import { lvmNameSchema } from "../../core/config/pool_config.ts";

/** LV names LVM2 keeps for its own sub-volumes. */
const RESERVED_LV_PREFIXES = ["snapshot", "pvmove"];
const RESERVED_LV_PARTS = ["_cdata", "_cmeta", "_corig", "_mlog", "_mimage", "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vorigin", "_vdata"];

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
  const result = v.safeParse(lvmNameSchema("logical volume name"), name);
  if (!result.success) throw new TypeError(`Invalid volume name "${name}": ${result.issues[0].message}`);
  if (RESERVED_LV_PREFIXES.some((prefix) => name.startsWith(prefix)) || RESERVED_LV_PARTS.some((part) => name.includes(part))) {
    throw new TypeError(`Invalid volume name "${name}": LVM2 reserves names starting with ${RESERVED_LV_PREFIXES.join(" or ")} or containing ${RESERVED_LV_PARTS.join(", ")}`);
  }
}
