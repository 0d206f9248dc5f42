/**
 * The `remote` driver: virtkit's API over libvirt's RPC protocol to an existing libvirtd (or virtkitd),
 * in TypeScript with no native code. A URI with a transport picks it: `qemu+unix:///session?socket=...`,
 * `test+tcp://127.0.0.1:16509/default`, `qemu+tls://host/system?pkipath=DIR`; `qemu:///session` stays
 * with virtkit's own qemu driver. The wire layer lives in `rpc/`, shared with virtkitd.
 *
 * @example
 * ```ts
 * import { remoteDriver } from "./mod.ts";
 * if (remoteDriver.name !== "remote" || !remoteDriver.schemes.includes("remote")) throw new Error("unexpected");
 * ```
 *
 * @module
 */
import { homedir } from "node:os";
import process from "node:process";
import { defineHypervisorDriver } from "../../core/driver.ts";
import { RemoteConnection } from "./connection.ts";
import { openSession } from "./session.ts";
import { remoteTarget } from "./uri.ts";

/** The driver definition; core resolves every `DRIVER+TRANSPORT://` URI to it. */
export const remoteDriver = defineHypervisorDriver({
  name: "remote",
  schemes: ["remote"],
  // No setDiskSource: a shut-off domain's disk lives in libvirt's storage, and core's offline jobs need the bytes here.
  capabilities: [
    "defineDomain", "undefineDomain", "startDomain", "shutdownDomain", "destroyDomain", "suspendDomain", "resumeDomain", "domainDisks",
    "liveBlockPull", "liveBlockCopy", "liveBlockCommit",
  ],
  // virtkitd's own core runs a shut-off domain's block jobs; libvirt has no offline copy or commit.
  peers: [{ name: "libvirtd", runsOfflineBlockJobs: false }, { name: "virtkitd", runsOfflineBlockJobs: true }],
  async open(uri, ctx) {
    const target = remoteTarget(uri, {
      runtimeDir: process.env.XDG_RUNTIME_DIR,
      homeDir: homedir(),
      root: typeof process.getuid === "function" && process.getuid() === 0,
    });
    const session = await openSession(target);
    try {
      return await RemoteConnection.open(session, ctx);
    } catch (error) {
      await session.close();
      throw error;
    }
  },
});

export { RemoteConnection } from "./connection.ts";
export { remoteTarget } from "./uri.ts";
