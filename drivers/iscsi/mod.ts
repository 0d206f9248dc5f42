/**
 * The `iscsi` storage backend: a pool is the set of LUNs of one iSCSI target (`{ name, type: "iscsi",
 * host, port?, target, initiator?, auth?: { type: "chap", username, password?, secret?, mutual? } }`),
 * reached through an initiator written in TypeScript over `node:net` (initiator/), so it needs no kernel
 * `iscsi_tcp` and no native code, as libvirt's `iscsi-direct` backend needs only libiscsi.
 *
 * What it does, as libvirt's `iscsi` and `iscsi-direct` backends do:
 * - `build` does nothing; `start` and `refresh` log in and scan the LUNs (REPORT LUNS, INQUIRY,
 *   READ CAPACITY(16)); only direct-access LUNs are volumes; `delete` is unsupported.
 * - Volumes are named `unit:0:0:N`; key and path are `iscsi://host:port/IQN/N`. They cannot be
 *   created, deleted or resized (`UnsupportedError`): LUNs are made on the target.
 * - Their bytes go through `openVolume`: clone from a LUN, download, upload to a writable LUN,
 *   `extents` (all data, unless the target manages provisioning and says otherwise).
 * - CHAP is one-way (the initiator authenticates), MD5, as libvirt's `<auth type="chap">`; mutual with
 *   `auth.mutual`. virtkit has no secret store: an account that only names its `secret` (as pool XML
 *   does) cannot log in, an `UnsupportedError` (drivers/iscsi/chap_account.ts).
 * - {@linkcode discoverTargets} asks a portal for its targets (SendTargets), as libvirt's
 *   `virConnectFindStoragePoolSources` does for `iscsi` pools.
 *
 * @module
 */
import { defineStorageBackend, type StorageBackendDefinition } from "../../core/storage_backend.ts";
import { IscsiPoolConfigSchema } from "../../core/config/pool_config.ts";
import type { IscsiPoolConfig } from "../../core/storage_pool.ts";
import { IscsiPool, type IscsiPoolOptions } from "./iscsi_pool.ts";

export { defaultInitiatorName } from "./config.ts";
export { type DiscoveredTarget, discoverTargets, type DiscoveryOptions } from "./discovery.ts";
export { IscsiPool, type IscsiPoolOptions } from "./iscsi_pool.ts";
export { type IscsiLocator, lunOfVolumeName, lunUrl, lunVolumeName, parseIscsiUrl } from "./lun_names.ts";

// LUNs are made on the target: no build or delete of the pool, no create, delete or resize of volumes (libvirt's rule).
const CAPABILITIES = ["start", "stop", "openVolume"] as const;

/**
 * Makes an `iscsi` backend with its own timeouts. Most code wants {@linkcode iscsiBackend}.
 *
 * @param options Session and login timeouts, bytes per command.
 * @returns The backend definition (name `"iscsi"`).
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { createIscsiBackend } from "./mod.ts";
 * const backend = createIscsiBackend({ commandTimeoutMs: 5_000 });
 * if (backend.name !== "iscsi" || v.is(backend.configSchema!, { name: "san", type: "iscsi", host: "127.0.0.1", target: "not-an-iqn" })) throw new Error("unexpected");
 * ```
 */
export function createIscsiBackend(options: IscsiPoolOptions = {}): StorageBackendDefinition {
  return defineStorageBackend({
    name: "iscsi",
    // core checks every iscsi definition against it before `open` sees it.
    configSchema: IscsiPoolConfigSchema,
    capabilities: CAPABILITIES,
    open: (config) => Promise.resolve(new IscsiPool(config as IscsiPoolConfig, options)),
  });
}

/**
 * The `iscsi` storage backend.
 *
 * @example
 * ```ts
 * import { createRegistry } from "virtkit";
 * import { iscsiBackend } from "./mod.ts";
 * const registry = createRegistry();
 * registry.register(iscsiBackend);
 * if (!registry.list("storage").some((entry) => entry.name === "iscsi")) throw new Error("unexpected");
 * ```
 */
export const iscsiBackend: StorageBackendDefinition = createIscsiBackend();
