/**
 * The CHAP account an `iscsi` pool logs in with, from its definition's `auth`. A definition may name
 * its secrets (`secret: { usage }` or `{ uuid }`, as pool XML does) instead of giving them; virtkit has
 * no secret store to look such a name up in, so the pool can be defined and listed, but logging in
 * needs the `password` (and the target's, for mutual CHAP).
 *
 * @module
 */
import type { IscsiChapAuth, IscsiPoolAuth, IscsiSecretRef } from "../../core/config/pool_config.ts";
import { UnsupportedError } from "../../core/errors.ts";

/**
 * The account with its passwords, or `undefined` for a pool without `auth`.
 *
 * @param pool The pool's name, for the message.
 * @param auth The definition's `auth`.
 * @param operation What needs it (`"start"`), for the error.
 * @returns The account.
 * @throws {UnsupportedError} When a password is only named by a secret reference.
 * @example
 * ```ts
 * import { chapAccountOf } from "./chap_account.ts";
 * const account = chapAccountOf("san", { type: "chap", username: "alice", password: "pw", secret: { usage: "san-chap" } }, "start");
 * if (account?.password !== "pw" || "secret" in account) throw new Error("unexpected");
 * const error = (() => { try { chapAccountOf("san", { type: "chap", username: "alice", secret: { usage: "san-chap" } }, "start"); } catch (e) { return e; } })();
 * if (!(error instanceof Error) || error.name !== "UnsupportedError" || !error.message.includes("no secret store")) throw new Error(String(error));
 * ```
 */
export function chapAccountOf(pool: string, auth: IscsiPoolAuth | undefined, operation: string): IscsiChapAuth | undefined {
  if (auth === undefined) return undefined;
  const password = passwordOf(pool, auth.username, auth, operation);
  const mutual = auth.mutual === undefined ? undefined : { username: auth.mutual.username, password: passwordOf(pool, auth.mutual.username, auth.mutual, operation) };
  return { type: "chap", username: auth.username, password, ...(mutual ? { mutual } : {}) };
}

function passwordOf(pool: string, username: string, account: { password?: string; secret?: IscsiSecretRef }, operation: string): string {
  if (account.password !== undefined) return account.password;
  const named = account.secret === undefined ? "no password" : "usage" in account.secret ? `secret usage "${account.secret.usage}"` : `secret uuid ${account.secret.uuid}`;
  throw new UnsupportedError(operation, {
    driver: "iscsi",
    detail: `pool "${pool}" gives the CHAP password of account "${username}" as ${named}, and no secret store is available locally (virtkit has none); give auth.password (and auth.mutual.password) in the definition, or define the pool on a libvirtd that holds the secret`,
  });
}
