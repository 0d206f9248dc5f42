/**
 * The CHAP part of an `iscsi` pool definition (`auth`), and iSCSI names.
 *
 * A CHAP secret is given as `password`, or named as libvirt names one: `secret: { usage }` or
 * `secret: { uuid }`, a secret object of the peer's secret store (`virsh secret-define`). Pool XML never
 * holds a password: it names the secret, `virtkit-iscsi-POOL` (and `virtkit-iscsi-POOL-mutual` for the
 * target's account) when the definition names none. virtkit has no secret store of its own, so a local
 * pool needs the `password`; a pool on a libvirtd needs the secret object instead.
 *
 * @module
 */
import * as v from "valibot";
import { uuidSchema } from "./rules.ts";

// iSCSI names (RFC 7143 §4.2.7.2): `iqn.YYYY-MM.reversed.domain[:anything]`, `eui.` + 16 hex, `naa.` + 16 or 32 hex.
const ISCSI_NAME = /^(iqn\.\d{4}-\d{2}\.[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[a-z0-9.:-]*)?|eui\.[0-9A-Fa-f]{16}|naa\.(?:[0-9A-Fa-f]{16}|[0-9A-Fa-f]{32}))$/;

/**
 * An iSCSI name (RFC 7143): `iqn.` (lower case), `eui.` or `naa.` form, at most 223 bytes.
 *
 * @param what The field, for the message.
 * @returns The schema.
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { iscsiNameSchema } from "./iscsi_auth.ts";
 * if (!v.is(iscsiNameSchema("target"), "iqn.2026-01.com.example:disk1") || v.is(iscsiNameSchema("target"), "disk1")) throw new Error("unexpected");
 * ```
 */
export function iscsiNameSchema(what: string) {
  return v.pipe(
    v.string(`${what} must be a string`),
    v.maxLength(223, `${what} is longer than 223 bytes (RFC 7143)`),
    v.regex(ISCSI_NAME, `${what} must be an iSCSI name like "iqn.2026-01.com.example:disk1" (lower case), "eui." or "naa." form`),
  );
}

const textSchema = (what: string) =>
  v.pipe(v.string(`${what} must be a string`), v.nonEmpty(`${what} is empty`), v.check((s) => !s.includes("\0"), `${what} contains NUL`));

/** A secret object of the peer holding a CHAP password, named by its usage or by its UUID (libvirt's `<secret usage|uuid/>`). */
export type IscsiSecretRef =
  | {
    /** The secret's usage name (`<usage type='iscsi'><target>NAME</target>`). */
    readonly usage: string;
  }
  | {
    /** The secret's UUID. */
    readonly uuid: string;
  };

const secretRefSchema = (what: string) =>
  v.pipe(
    v.strictObject({
      /** The secret's usage name. */
      usage: v.optional(textSchema(`${what}.usage`)),
      /** The secret's UUID. */
      uuid: v.optional(uuidSchema),
    }),
    v.check((ref) => (ref.usage === undefined) !== (ref.uuid === undefined), `${what} must be { usage: "NAME" } or { uuid: "UUID" } (one of them), naming a secret object of the peer`),
    v.transform((ref): IscsiSecretRef => (ref.uuid !== undefined ? { uuid: ref.uuid } : { usage: ref.usage! })),
  );

const hasSecret = <A extends { password?: string | undefined; secret?: unknown }>(account: A) => account.password !== undefined || account.secret !== undefined;

/**
 * The `auth` of an `iscsi` pool: CHAP, the initiator proving itself to the target (`username`, and
 * `password` or the `secret` holding it); with `mutual`, the target must prove itself too, with the
 * secret of its outgoing account (tgtd's `tgtadm --mode account --op bind --outgoing`, open-iscsi's
 * `username_in`/`password_in`). Each account needs its `password`, or a `secret` naming it.
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { IscsiChapAuthSchema } from "virtkit";
 * if (!v.is(IscsiChapAuthSchema, { type: "chap", username: "u", password: "p" }) || v.is(IscsiChapAuthSchema, { type: "chap", username: "u" })) throw new Error("unexpected");
 * if (!v.is(IscsiChapAuthSchema, { type: "chap", username: "u", secret: { usage: "san-chap" } })) throw new Error("unexpected");
 * if (!v.is(IscsiChapAuthSchema, { type: "chap", username: "u", password: "p", mutual: { username: "t", password: "q" } })) throw new Error("unexpected");
 * if (v.is(IscsiChapAuthSchema, { type: "chap", username: "u", password: "p", mutual: { username: "t" } })) throw new Error("unexpected");
 * ```
 */
export const IscsiChapAuthSchema = v.pipe(
  v.strictObject({
    /** Always `"chap"` (MD5). */
    type: v.literal("chap", 'auth.type must be "chap"'),
    /** The account name on the target (`CHAP_N`). */
    username: textSchema("auth.username"),
    /** The shared secret (never written to pool XML). */
    password: v.optional(textSchema("auth.password")),
    /** The peer's secret object holding the password (libvirt's `<auth><secret usage|uuid/>`). */
    secret: v.optional(secretRefSchema("auth.secret")),
    /** The target's own account, which it must answer our challenge with (mutual CHAP). */
    mutual: v.optional(v.pipe(
      v.strictObject({
        /** The name the target must give (`CHAP_N` of its answer). */
        username: textSchema("auth.mutual.username"),
        /** The target's secret (never written to pool XML). */
        password: v.optional(textSchema("auth.mutual.password")),
        /** The peer's secret object holding it. */
        secret: v.optional(secretRefSchema("auth.mutual.secret")),
      }),
      v.check((a) => hasSecret(a), "auth.mutual needs auth.mutual.password, or auth.mutual.secret naming it"),
    )),
  }),
  v.check((a) => hasSecret(a), "auth needs auth.password, or auth.secret naming it ({ usage } or { uuid })"),
);

/** The `auth` of an `iscsi` pool definition (see {@linkcode IscsiChapAuthSchema}). */
export type IscsiPoolAuth = v.InferOutput<typeof IscsiChapAuthSchema>;

/**
 * A CHAP account with its secrets at hand: a started `iscsi` pool's `auth`, as its volumes carry it to
 * QEMU (`VolumeRecord.auth`).
 */
export interface IscsiChapAuth {
  /** Always `"chap"`. */
  readonly type: "chap";
  /** The account name on the target. */
  readonly username: string;
  /** The shared secret. */
  readonly password: string;
  /** The target's account (mutual CHAP). */
  readonly mutual?: {
    /** The name the target must answer with. */
    readonly username: string;
    /** The target's secret. */
    readonly password: string;
  };
}

/**
 * The usage name of the secret that pool XML names for a pool's CHAP account when its definition names
 * none: `virtkit-iscsi-POOL`, and `virtkit-iscsi-POOL-mutual` for the target's account. Define a secret
 * of that usage on a libvirtd before starting the pool there.
 *
 * @param pool The pool's name.
 * @param account Whose account: ours (`"initiator"`) or the target's (`"mutual"`).
 * @returns The usage name.
 * @example
 * ```ts
 * import { defaultSecretUsage } from "./iscsi_auth.ts";
 * if (defaultSecretUsage("san", "initiator") !== "virtkit-iscsi-san" || defaultSecretUsage("san", "mutual") !== "virtkit-iscsi-san-mutual") throw new Error("unexpected");
 * ```
 */
export function defaultSecretUsage(pool: string, account: "initiator" | "mutual"): string {
  return account === "mutual" ? `virtkit-iscsi-${pool}-mutual` : `virtkit-iscsi-${pool}`;
}
