/**
 * What the `iscsi` backend adds to its pool definition: the default initiator name. The definition's
 * schema is core's `IscsiPoolConfigSchema` (core/config/pool_config.ts), which refuses unknown fields, so
 * a typo (`"taget"`) is an error instead of a silently ignored setting.
 *
 * @module
 */
import os from "node:os";

/**
 * The initiator name used when a pool gives none: one per host, as open-iscsi's
 * `/etc/iscsi/initiatorname.iscsi` is, so target ACLs can name it.
 *
 * @returns An IQN.
 * @example
 * ```ts
 * import { defaultInitiatorName } from "./config.ts";
 * if (!defaultInitiatorName().startsWith("iqn.2026-01.org.virtkit:")) throw new Error("unexpected");
 * ```
 */
export function defaultInitiatorName(): string {
  const host = os.hostname().toLowerCase().replace(/[^a-z0-9.-]/g, "-").replace(/^[.-]+|[.-]+$/g, "") || "host";
  return `iqn.2026-01.org.virtkit:${host}`.slice(0, 223);
}
