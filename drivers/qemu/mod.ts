/**
 * The `qemu` driver: real `qemu-system-x86_64` processes managed over QMP.
 *
 * - `qemu:///session` keeps its state under `~/.local/state/virtkit/qemu`, or under the `stateDir`
 *   connect option or URI parameter (`qemu:///session?stateDir=/tmp/vk`): definitions in `domains/`,
 *   run records, QMP sockets and QEMU logs in `run/`.
 * - `start()` launches one detached QEMU per domain (`-nodefaults`, `-machine none` unless the config
 *   names a machine, KVM when `/dev/kvm` is usable, else TCG, a named `-blockdev` chain per disk) and
 *   talks QMP over a unix socket. QEMU outlives the connection: `close()` only lets go, and the next
 *   connection on the same state directory finds the process and its block jobs again.
 * - `blockPull()` on a running domain is QMP `block-stream` with manual finalize and dismiss; on a
 *   shut-off domain whose disk is a pool volume it is the storage layer's offline pull.
 *
 * Needs `qemu-system-x86_64` and `qemu-img` (Debian: `apt-get install qemu-system-x86 qemu-utils`).
 *
 * @example
 * ```ts
 * import { createRegistry, MiB } from "virtkit";
 * import { qemuDriver } from "./mod.ts";
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * // The default registry has it built in; an empty one takes it like any third-party driver.
 * const registry = createRegistry();
 * registry.register(qemuDriver);
 * const stateDir = mkdtempSync(join(tmpdir(), "virtkit-doc-"));
 * try {
 *   await using conn = await registry.connect("qemu:///session", { stateDir });
 *   const dom = await conn.domains.define({ name: "demo", vcpus: 1, memoryBytes: MiB(64), disks: [] });
 *   if ((await dom.info()).state !== "shutoff") throw new Error("unexpected");
 *   await dom.undefine();
 * } finally {
 *   rmSync(stateDir, { recursive: true, force: true });
 * }
 * ```
 *
 * @module
 */
import { defineHypervisorDriver, type HypervisorDriverDefinition } from "../../core/driver.ts";
import { QemuConnection } from "./connection.ts";

export type { HypervisorDriverDefinition } from "../../core/driver.ts";
export { DEFAULT_SHUTDOWN_TIMEOUT_MS } from "./connection.ts";
export { pickAccelerator, QEMU_BINARY } from "./command_line.ts";
export { defaultStateDir } from "./state_store.ts";

/**
 * The `qemu` hypervisor driver (scheme `qemu`).
 *
 * @example
 * ```ts
 * import { qemuDriver } from "./mod.ts";
 * if (qemuDriver.kind !== "hypervisor" || qemuDriver.schemes[0] !== "qemu") throw new Error("unexpected");
 * ```
 */
export const qemuDriver: HypervisorDriverDefinition = defineHypervisorDriver({
  name: "qemu",
  schemes: ["qemu"],
  capabilities: ["defineDomain", "undefineDomain", "startDomain", "shutdownDomain", "destroyDomain", "suspendDomain", "resumeDomain", "domainDisks", "liveBlockPull", "liveBlockCopy", "liveBlockCommit", "setDiskSource"],
  open: (uri, ctx) => QemuConnection.open(uri, ctx),
});
