/**
 * The `iscsi` pool definition as a valibot schema: `{ name, type: "iscsi", host, port?, target,
 * initiator?, auth?: { type: "chap", username, password } }`. Unknown fields are refused, so a typo
 * (`"taget"`) is an error instead of a silently ignored setting.
 *
 * @module
 */
import * as v from "valibot";
import os from "node:os";

/** iSCSI names (RFC 7143 §4.2.7.2): `iqn.YYYY-MM.reversed.domain[:anything]`, `eui.` + 16 hex, `naa.` + 16 or 32 hex. */
const ISCSI_NAME = /^(iqn\.\d{4}-\d{2}\.[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[a-z0-9.:-]*)?|eui\.[0-9A-Fa-f]{16}|naa\.(?:[0-9A-Fa-f]{16}|[0-9A-Fa-f]{32}))$/;
/** A host name, an IPv4 address, or an IPv6 address without brackets. */
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$/;

const iscsiName = (what: string) => v.pipe(v.string(`${what} must be a string`), v.maxLength(223, `${what} is longer than 223 bytes (RFC 7143)`), v.regex(ISCSI_NAME, `${what} must be an iSCSI name like "iqn.2026-01.com.example:disk1" (lower case), "eui." or "naa." form`));

/** The schema of an `iscsi` pool definition. */
export const IscsiPoolConfigSchema = v.strictObject({
  name: v.string(),
  type: v.literal("iscsi"),
  host: v.pipe(v.string("host must be a string"), v.nonEmpty("host is empty"), v.maxLength(253, "host is longer than 253 characters"), v.regex(HOST, "host must be a host name or an IP address (no port, no brackets)")),
  port: v.optional(v.pipe(v.number("port must be a number"), v.integer("port must be an integer"), v.minValue(1, "port must be 1 to 65535"), v.maxValue(65535, "port must be 1 to 65535"))),
  target: iscsiName("target"),
  initiator: v.optional(iscsiName("initiator")),
  auth: v.optional(
    v.strictObject({
      type: v.literal("chap", 'auth.type must be "chap"'),
      username: v.pipe(v.string("auth.username must be a string"), v.nonEmpty("auth.username is empty"), v.regex(/^[^\0]*$/, "auth.username contains NUL")),
      password: v.pipe(v.string("auth.password must be a string"), v.nonEmpty("auth.password is empty"), v.regex(/^[^\0]*$/, "auth.password contains NUL")),
    }, "auth must be an object { type: \"chap\", username, password }"),
  ),
}, "an iscsi pool definition must be an object");

/** A checked `iscsi` pool definition. */
export type IscsiPoolSettings = v.InferOutput<typeof IscsiPoolConfigSchema>;

/**
 * Checks an `iscsi` pool definition (the backend's `validate` hook).
 *
 * @param config The definition.
 * @returns It, typed.
 * @throws {TypeError} Naming the pool, the field and what is wrong with it.
 * @example
 * ```ts
 * import { validateIscsiPoolConfig } from "./config.ts";
 * validateIscsiPoolConfig({ name: "san", type: "iscsi", host: "127.0.0.1", target: "iqn.2026-01.com.example:disk" });
 * let message = "";
 * try { validateIscsiPoolConfig({ name: "san", type: "iscsi", host: "127.0.0.1", target: "disk", port: 0 }); } catch (e) { message = (e as Error).message; }
 * if (!message.includes('pool "san"') || !message.includes("target")) throw new Error(message);
 * ```
 */
export function validateIscsiPoolConfig(config: unknown): IscsiPoolSettings {
  const result = v.safeParse(IscsiPoolConfigSchema, config);
  if (result.success) return result.output;
  const name = typeof (config as { name?: unknown })?.name === "string" ? (config as { name: string }).name : "?";
  const problems = result.issues.map((issue) => {
    const where = v.getDotPath(issue);
    // A strict object reports a missing field and a field it does not know by the key alone.
    if (issue.type === "strict_object" && where && issue.expected === "never") return `unknown field "${where}"`;
    if (issue.type === "strict_object" && where && issue.received === "undefined") return `${where} is missing`;
    return issue.message;
  });
  throw new TypeError(`Invalid iscsi pool "${name}": ${problems.join("; ")}`);
}

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
