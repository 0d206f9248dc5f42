/**
 * What a driver or backend declares it can do (`capabilities` in its definition), and the check that
 * what its `open` returned has exactly those optional methods, so the support matrix generated from the
 * declarations cannot drift from the code.
 *
 * @module
 */
import { VirtError } from "./errors.ts";
import type { DriverPeer, HypervisorConnection, HypervisorDriverDefinition } from "./driver.ts";
import type { StorageBackendDefinition, StoragePoolBackend } from "./storage_backend.ts";

/**
 * The optional {@linkcode StoragePoolBackend} methods a backend declares in `capabilities`, in the
 * order the support matrix shows them.
 */
export const STORAGE_OPERATIONS = Object.freeze(
  ["build", "start", "stop", "delete", "createVolume", "deleteVolume", "resizeVolume", "openVolume"] as const,
);

/** One optional storage operation (a method name of {@linkcode StoragePoolBackend}). */
export type StorageOperation = (typeof STORAGE_OPERATIONS)[number];

/**
 * The optional {@linkcode HypervisorConnection} methods a driver declares in `capabilities`, in the
 * order the support matrix shows them.
 */
export const HYPERVISOR_OPERATIONS = Object.freeze(
  [
    "defineDomain", "undefineDomain", "startDomain", "shutdownDomain", "destroyDomain", "suspendDomain", "resumeDomain", "domainDisks",
    "liveBlockPull", "liveBlockCopy", "liveBlockCommit", "setDiskSource",
  ] as const,
);

/** One optional hypervisor operation (a method name of {@linkcode HypervisorConnection}). */
export type HypervisorOperation = (typeof HYPERVISOR_OPERATIONS)[number];

/**
 * Checks that what a definition's `open` returned (a pool object, a connection) has exactly the optional
 * methods the definition declares, so the declaration (which docs/support-matrix.md is generated from)
 * cannot drift from the code. A definition without `capabilities` is not checked. A hypervisor driver's
 * connection must also have the `peerRunsOfflineBlockJobs` of one of the `peers` it declares.
 *
 * @param definition The storage backend or hypervisor driver definition.
 * @param opened What its `open` returned.
 * @throws {VirtError} (`internal`) Naming each operation declared but missing, or present but not declared,
 *   or the declared peers when none matches the connection.
 * @example
 * ```ts
 * import { checkDeclaredOperations } from "./capabilities.ts";
 * import { defineStorageBackend } from "./storage_backend.ts";
 * const def = defineStorageBackend({ name: "demo", capabilities: ["build"], open: async () => { throw new Error("unused"); } });
 * let threw = false;
 * try { checkDeclaredOperations(def, { build: async () => {}, stop: async () => {} } as never); } catch { threw = true; }
 * if (!threw) throw new Error("unexpected");
 * ```
 */
export function checkDeclaredOperations(
  definition: StorageBackendDefinition | HypervisorDriverDefinition,
  opened: StoragePoolBackend | HypervisorConnection,
): void {
  checkDeclaredPeer(definition, opened);
  const declared: readonly string[] | undefined = definition.capabilities;
  if (declared === undefined) return;
  const all: readonly string[] = definition.kind === "storage" ? STORAGE_OPERATIONS : HYPERVISOR_OPERATIONS;
  const has = (op: string) => typeof (opened as unknown as Record<string, unknown>)[op] === "function";
  const missing = all.filter((op) => declared.includes(op) && !has(op));
  const undeclared = all.filter((op) => !declared.includes(op) && has(op));
  if (missing.length + undeclared.length === 0) return;
  const what = definition.kind === "storage" ? "its pool object" : "its connection";
  const parts = [
    ...(missing.length > 0 ? [`declares ${missing.join(", ")} but ${what} lacks ${missing.length === 1 ? "it" : "them"}`] : []),
    ...(undeclared.length > 0 ? [`has ${undeclared.join(", ")} without declaring ${undeclared.length === 1 ? "it" : "them"}`] : []),
  ];
  const kind = definition.kind === "storage" ? "Storage backend" : "Hypervisor driver";
  throw new VirtError("internal", `${kind} "${definition.name}" ${parts.join(", and ")}`, { driver: definition.name });
}

/**
 * Checks a definition's `capabilities` list against the operations of its kind.
 *
 * @param value What the definition declares.
 * @param all The operations of its kind.
 * @param what The definition, for the message.
 * @returns A frozen copy, or `undefined` when nothing was declared.
 * @throws {TypeError} For an unknown or repeated operation.
 * @example
 * ```ts
 * import { checkCapabilityList, STORAGE_OPERATIONS } from "./capabilities.ts";
 * let threw = false;
 * try { checkCapabilityList(["fly"], STORAGE_OPERATIONS, "backend \"x\""); } catch { threw = true; }
 * if (!threw || checkCapabilityList(["build"], STORAGE_OPERATIONS, "backend")?.join() !== "build") throw new Error("unexpected");
 * ```
 */
export function checkCapabilityList(value: unknown, all: readonly string[], what: string): readonly string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((op) => !all.includes(op)) || new Set(value).size !== value.length) {
    throw new TypeError(`Invalid ${what}: capabilities must list distinct operations of ${all.join(", ")}`);
  }
  return Object.freeze([...value]);
}

/** A hypervisor connection's `peerRunsOfflineBlockJobs` must be what one of its driver's declared peers says. */
function checkDeclaredPeer(definition: StorageBackendDefinition | HypervisorDriverDefinition, opened: StoragePoolBackend | HypervisorConnection): void {
  if (definition.kind !== "hypervisor" || definition.peers === undefined) return;
  const runsOffline = (opened as HypervisorConnection).peerRunsOfflineBlockJobs === true;
  if (definition.peers.some((peer) => peer.runsOfflineBlockJobs === runsOffline)) return;
  throw new VirtError("internal", `Hypervisor driver "${definition.name}" declares peers ${definition.peers.map((p) => p.name).join(", ")}, none of which has runsOfflineBlockJobs ${runsOffline} as its connection does`, {
    driver: definition.name,
  });
}

/**
 * Checks a hypervisor driver's `peers` list: each a distinct non-empty `name` with a boolean
 * `runsOfflineBlockJobs`.
 *
 * @param value What the definition declares.
 * @param what The definition, for the message.
 * @returns A frozen copy, or `undefined` when nothing was declared.
 * @throws {TypeError} For a malformed or repeated peer, or an empty list.
 * @example
 * ```ts
 * import { checkPeerList } from "./capabilities.ts";
 * const peers = checkPeerList([{ name: "libvirtd", runsOfflineBlockJobs: false }], "driver");
 * if (peers?.[0]?.name !== "libvirtd" || !Object.isFrozen(peers[0])) throw new Error("unexpected");
 * let threw = false;
 * try { checkPeerList([{ name: "libvirtd" }], "driver"); } catch { threw = true; }
 * if (!threw) throw new Error("unexpected");
 * ```
 */
export function checkPeerList(value: unknown, what: string): readonly DriverPeer[] | undefined {
  if (value === undefined) return undefined;
  const valid = (peer: unknown): peer is DriverPeer =>
    typeof peer === "object" && peer !== null && typeof (peer as DriverPeer).name === "string" && (peer as DriverPeer).name !== "" &&
    typeof (peer as DriverPeer).runsOfflineBlockJobs === "boolean";
  if (!Array.isArray(value) || value.length === 0 || !value.every(valid) || new Set(value.map((p) => p.name)).size !== value.length) {
    throw new TypeError(`Invalid ${what}: peers must be a non-empty list of distinct { name, runsOfflineBlockJobs } (a name and a boolean)`);
  }
  return Object.freeze(value.map((peer) => Object.freeze({ name: peer.name, runsOfflineBlockJobs: peer.runsOfflineBlockJobs })));
}
