/**
 * The `logical` storage backend: a pool is an LVM2 volume group (`{ name, type: "logical", volumeGroup,
 * devices?, thinPool? }`) and its volumes are logical volumes, as in libvirt's logical pool.
 *
 * The rules it follows (libvirt's, where the issue is silent):
 * - `build` runs `pvcreate` on each of `devices`, then `vgcreate`; `delete` runs `vgremove -f` (its LVs
 *   go with it) and `pvremove` on the group's PVs. `start` needs the group; it activates it
 *   (`vgchange -aay`) and `stop` deactivates it, where device-mapper works.
 * - `refresh`, sizes and volumes come from `vgs`/`lvs --reportformat json --units b`. Pool allocation
 *   is size - free. Thin pool LVs are not volumes. Key = LV UUID, path = `/dev/VG/LV`, format raw.
 * - `volumes.create` is `lvcreate -L` (linear), or `lvcreate --thin -V` in `thinPool` when the
 *   definition names one; LVM rounds the size up to whole extents. qcow2 and backing images are
 *   `UnsupportedError`. `resize` is `lvresize` (shrinking only with `{ shrink: true }`, checked by core),
 *   `delete` is `lvremove -f`.
 * - Every tool runs through a `CommandRunner` with an argument array, never a shell; a failure is a
 *   `CommandError` carrying argv, exit code and stderr.
 * - On a host whose kernel has no device-mapper (`dmsetup version` fails), every command runs with
 *   `--driverloaded n`, so LVs are metadata only; opening a volume's bytes (clone, upload, download,
 *   wipe, ...) is then `UnsupportedError` saying so, and so is creating or deleting a thin volume (LVM2
 *   does both through the thin pool's kernel target; listing, info and resize of thin volumes work
 *   metadata-only). Where device-mapper works, volumes are opened through their device.
 *
 * @module
 */
import { defineStorageBackend, type StorageBackendDefinition } from "../../core/storage_backend.ts";
import type { LogicalPoolConfig } from "../../core/storage_pool.ts";
import { type CommandRunner, createNodeCommandRunner } from "../command_runner.ts";
import { LogicalPoolConfigSchema } from "../../core/config/pool_config.ts";
import { openDeviceVolumeIO } from "./device_io.ts";
import { LogicalPool, type LvDeviceOpener } from "./logical_pool.ts";

export { assertLvName } from "./config.ts";
export { openDeviceVolumeIO } from "./device_io.ts";
export { LogicalPool, type LogicalPoolOptions, type LvDeviceOpener } from "./logical_pool.ts";

/** The Debian packages bringing the tools the backend runs. */
export const LVM_PACKAGES: Readonly<Record<string, string>> = Object.freeze({
  pvcreate: "lvm2",
  pvremove: "lvm2",
  pvs: "lvm2",
  vgcreate: "lvm2",
  vgremove: "lvm2",
  vgchange: "lvm2",
  vgs: "lvm2",
  lvcreate: "lvm2",
  lvremove: "lvm2",
  lvresize: "lvm2",
  lvs: "lvm2",
  dmsetup: "dmsetup",
});

/** Options of {@linkcode createLvmBackend}. */
export interface LvmBackendOptions {
  /** Runs the LVM2 tools (default: the real ones). */
  runner?: CommandRunner;
  /** Opens an active LV's device (default {@linkcode openDeviceVolumeIO}). */
  openDevice?: LvDeviceOpener;
}

/**
 * Makes a `logical` backend definition with its own tool runner (tests replay recorded LVM2 output
 * through it). Most code wants {@linkcode lvmBackend}.
 *
 * @param options The runner and device opener.
 * @returns The backend definition (name `"logical"`).
 * @example
 * ```ts
 * import { createLvmBackend } from "./mod.ts";
 * import * as v from "valibot";
 * const backend = createLvmBackend({ runner: { run: async () => '{"report":[{"vg":[]}]}' } });
 * if (backend.name !== "logical" || v.is(backend.configSchema!, { name: "p", type: "logical", volumeGroup: "" })) throw new Error("unexpected");
 * ```
 */
export function createLvmBackend(options: LvmBackendOptions = {}): StorageBackendDefinition {
  const runner = options.runner ?? createNodeCommandRunner({ driver: "logical", packages: LVM_PACKAGES });
  const openDevice = options.openDevice ?? openDeviceVolumeIO;
  return defineStorageBackend({
    name: "logical",
    capabilities: ["build", "start", "stop", "delete", "createVolume", "deleteVolume", "resizeVolume", "openVolume"],
    // core checks every logical definition against it (LVM2's name rules, each device once).
    configSchema: LogicalPoolConfigSchema,
    open: (config) => Promise.resolve(new LogicalPool(config as LogicalPoolConfig, { runner, openDevice })),
  });
}

/**
 * The `logical` (LVM2) storage backend, built into the default registry.
 *
 * @example
 * ```ts
 * import { createDefaultRegistry } from "virtkit";
 * const registry = createDefaultRegistry();
 * if (!registry.list("storage").some((entry) => entry.name === "logical")) throw new Error("unexpected");
 * ```
 */
export const lvmBackend: StorageBackendDefinition = createLvmBackend();
