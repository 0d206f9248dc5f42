/**
 * The conformance kit with virtkit's own remote driver against virtkitd (test:///default served over a
 * Unix socket, dir pools in the daemon's scratch directory). virtkit's program carries what libvirt's
 * protocol lacks, so the driver declares streams with extents, capped clones and their job cases, and
 * fault injection (`conn.testing` of the daemon's test: connection). The block job cases too, live and
 * shut off: virtkitd's domain XML carries each disk's backing chain in both states, and the daemon's
 * core runs the jobs of a shut-off domain itself (the driver's `peerRunsOfflineBlockJobs`).
 */
import { join } from "node:path";
import { afterAll } from "vitest";
import { connect, MiB } from "../../mod.ts";
import { describeConformance } from "../conformance/vitest.ts";
import { skipDaemon, startVirtkitd, type VirtkitdProcess } from "./_support/virtkitd.ts";

let daemon: VirtkitdProcess | undefined;
afterAll(async () => {
  await daemon?.stop();
});
const ready = skipDaemon ? undefined : startVirtkitd().then((d) => (daemon = d));
let pools = 0;

if (ready) {
  describeConformance("remote -> virtkitd (test:///default)", {
    connect: async () => connect((await ready).uri("test:///default")),
    domainConfig: (name) => ({ name, vcpus: 1, memoryBytes: MiB(64), disks: [] }),
    poolConfig: (name) => ({ name, type: "dir", path: join(daemon!.dir, "pools", `${name}-${++pools}`) }),
    capabilities: { domains: true, storage: true, volumeCreate: true, volumeFormats: ["raw", "qcow2"], volumeResize: true, volumeStreams: true, volumeClone: true, faultInjection: true, blockPull: true, blockCopy: true, blockCommit: true, liveBlockJobs: true },
    timeoutMs: 60_000,
  });
}
