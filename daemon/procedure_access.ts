/**
 * Which libvirt REMOTE procedures a read-only client (CONNECT_OPEN flag 1, `virsh -r`) may call, and the
 * names the daemon reports in errors. libvirt enforces read-only in its public API
 * (`virCheckReadOnlyGoto` in every call that changes something); the daemon does it once, before
 * dispatch, from this table. The table is an allowlist: a procedure missing from it is denied to
 * read-only clients, so a newly served mutating procedure cannot leak by being forgotten here.
 *
 * @module
 */

/** `read`: safe for read-only clients; `write`: changes something (or exposes data, like a download). */
export type ProcedureAccess = "read" | "write";

// Numbers are libvirt's (src/remote/remote_protocol.x); names without the REMOTE_PROC_ prefix.
const TABLE: ReadonlyArray<readonly [number, string, ProcedureAccess]> = [
  [1, "CONNECT_OPEN", "read"],
  [2, "CONNECT_CLOSE", "read"],
  [3, "CONNECT_GET_TYPE", "read"],
  [4, "CONNECT_GET_VERSION", "read"],
  [6, "NODE_GET_INFO", "read"],
  [7, "CONNECT_GET_CAPABILITIES", "read"],
  [9, "DOMAIN_CREATE", "write"],
  [11, "DOMAIN_DEFINE_XML", "write"],
  [12, "DOMAIN_DESTROY", "write"],
  [14, "DOMAIN_GET_XML_DESC", "read"],
  [15, "DOMAIN_GET_AUTOSTART", "read"],
  [16, "DOMAIN_GET_INFO", "read"],
  [19, "DOMAIN_GET_OS_TYPE", "read"],
  [22, "DOMAIN_LOOKUP_BY_ID", "read"],
  [23, "DOMAIN_LOOKUP_BY_NAME", "read"],
  [24, "DOMAIN_LOOKUP_BY_UUID", "read"],
  [28, "DOMAIN_RESUME", "write"],
  [29, "DOMAIN_SET_AUTOSTART", "write"],
  [33, "DOMAIN_SHUTDOWN", "write"],
  [34, "DOMAIN_SUSPEND", "write"],
  [35, "DOMAIN_UNDEFINE", "write"],
  [59, "CONNECT_GET_HOSTNAME", "read"],
  [60, "CONNECT_SUPPORTS_FEATURE", "read"],
  [66, "AUTH_LIST", "read"],
  [76, "STORAGE_POOL_CREATE_XML", "write"],
  [77, "STORAGE_POOL_DEFINE_XML", "write"],
  [78, "STORAGE_POOL_CREATE", "write"],
  [79, "STORAGE_POOL_BUILD", "write"],
  [80, "STORAGE_POOL_DESTROY", "write"],
  [81, "STORAGE_POOL_DELETE", "write"],
  [82, "STORAGE_POOL_UNDEFINE", "write"],
  [83, "STORAGE_POOL_REFRESH", "write"],
  [84, "STORAGE_POOL_LOOKUP_BY_NAME", "read"],
  [85, "STORAGE_POOL_LOOKUP_BY_UUID", "read"],
  [86, "STORAGE_POOL_LOOKUP_BY_VOLUME", "read"],
  [87, "STORAGE_POOL_GET_INFO", "read"],
  [88, "STORAGE_POOL_GET_XML_DESC", "read"],
  [89, "STORAGE_POOL_GET_AUTOSTART", "read"],
  [90, "STORAGE_POOL_SET_AUTOSTART", "write"],
  [93, "STORAGE_VOL_CREATE_XML", "write"],
  [94, "STORAGE_VOL_DELETE", "write"],
  [95, "STORAGE_VOL_LOOKUP_BY_NAME", "read"],
  [96, "STORAGE_VOL_LOOKUP_BY_KEY", "read"],
  [97, "STORAGE_VOL_LOOKUP_BY_PATH", "read"],
  [98, "STORAGE_VOL_GET_INFO", "read"],
  [99, "STORAGE_VOL_GET_XML_DESC", "read"],
  [100, "STORAGE_VOL_GET_PATH", "read"],
  [110, "CONNECT_GET_URI", "read"],
  [121, "DOMAIN_GET_SECURITY_LABEL", "read"],
  [122, "NODE_GET_SECURITY_MODEL", "read"],
  [125, "STORAGE_VOL_CREATE_XML_FROM", "write"],
  [149, "CONNECT_IS_SECURE", "read"],
  [150, "DOMAIN_IS_ACTIVE", "read"],
  [151, "DOMAIN_IS_PERSISTENT", "read"],
  [154, "STORAGE_POOL_IS_ACTIVE", "read"],
  [155, "STORAGE_POOL_IS_PERSISTENT", "read"],
  [157, "CONNECT_GET_LIB_VERSION", "read"],
  [165, "STORAGE_VOL_WIPE", "write"],
  [167, "CONNECT_DOMAIN_EVENT_REGISTER_ANY", "read"],
  [168, "CONNECT_DOMAIN_EVENT_DEREGISTER_ANY", "read"],
  [183, "DOMAIN_HAS_MANAGED_SAVE_IMAGE", "read"],
  [196, "DOMAIN_CREATE_WITH_FLAGS", "write"],
  // Upload writes; download hands out a disk's bytes. libvirt checks read-only for both.
  [208, "STORAGE_VOL_UPLOAD", "write"],
  [209, "STORAGE_VOL_DOWNLOAD", "write"],
  [212, "DOMAIN_GET_STATE", "read"],
  [231, "DOMAIN_UNDEFINE_FLAGS", "write"],
  [234, "DOMAIN_DESTROY_FLAGS", "write"],
  [237, "DOMAIN_BLOCK_JOB_ABORT", "write"],
  [238, "DOMAIN_GET_BLOCK_JOB_INFO", "read"],
  [239, "DOMAIN_BLOCK_JOB_SET_SPEED", "write"],
  [240, "DOMAIN_BLOCK_PULL", "write"],
  [258, "DOMAIN_SHUTDOWN_FLAGS", "write"],
  [259, "STORAGE_VOL_WIPE_PATTERN", "write"],
  [260, "STORAGE_VOL_RESIZE", "write"],
  [266, "DOMAIN_BLOCK_REBASE", "write"],
  [273, "CONNECT_LIST_ALL_DOMAINS", "read"],
  [281, "CONNECT_LIST_ALL_STORAGE_POOLS", "read"],
  [282, "STORAGE_POOL_LIST_ALL_VOLUMES", "read"],
  [290, "DOMAIN_BLOCK_COMMIT", "write"],
  [316, "CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY", "read"],
  [317, "CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY", "read"],
  [345, "DOMAIN_BLOCK_COPY", "write"],
  [350, "DOMAIN_DEFINE_XML_FLAGS", "write"],
  [360, "CONNECT_REGISTER_CLOSE_CALLBACK", "read"],
  [368, "CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY", "read"],
  [369, "CONNECT_STORAGE_POOL_EVENT_DEREGISTER_ANY", "read"],
  [361, "CONNECT_UNREGISTER_CLOSE_CALLBACK", "read"],
  [378, "STORAGE_VOL_GET_INFO_FLAGS", "read"],
  [426, "DOMAIN_GET_MESSAGES", "read"],
];

const BY_NUMBER: ReadonlyMap<number, { readonly name: string; readonly access: ProcedureAccess }> = new Map(
  TABLE.map(([proc, name, access]) => [proc, { name, access }]),
);

/**
 * A procedure's access class.
 *
 * @param proc The procedure number.
 * @returns `read`, `write`, or undefined for a procedure the table does not list.
 * @example
 * ```ts
 * import { accessOf } from "./procedure_access.ts";
 * if (accessOf(23) !== "read" || accessOf(12) !== "write" || accessOf(99999) !== undefined) throw new Error("unexpected");
 * ```
 */
export function accessOf(proc: number): ProcedureAccess | undefined {
  return BY_NUMBER.get(proc)?.access;
}

/**
 * The procedure's libvirt name for error messages (`REMOTE_PROC_DOMAIN_CREATE`), or its number when the
 * daemon does not know it.
 *
 * @param proc The procedure number.
 * @returns Such as `"REMOTE_PROC_DOMAIN_CREATE"` or `"procedure 9999"`.
 * @example
 * ```ts
 * import { procedureName } from "./procedure_access.ts";
 * if (procedureName(9) !== "REMOTE_PROC_DOMAIN_CREATE" || procedureName(9999) !== "procedure 9999") throw new Error("unexpected");
 * ```
 */
export function procedureName(proc: number): string {
  const known = BY_NUMBER.get(proc);
  return known ? `REMOTE_PROC_${known.name}` : `procedure ${proc}`;
}

/**
 * Every classified procedure, for tests that check each write procedure is refused to read-only clients.
 *
 * @returns `[number, name, access]` triples, in number order.
 * @example
 * ```ts
 * import { classifiedProcedures } from "./procedure_access.ts";
 * if (!classifiedProcedures().some(([proc, , access]) => proc === 240 && access === "write")) throw new Error("unexpected");
 * ```
 */
export function classifiedProcedures(): ReadonlyArray<readonly [number, string, ProcedureAccess]> {
  return TABLE;
}
