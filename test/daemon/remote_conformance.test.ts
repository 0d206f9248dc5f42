/**
 * The conformance kit with virtkit's own remote driver against virtkitd (test:///default served over a
 * Unix socket): the domain and storage cases the remote driver passes against a real libvirtd (dir pools
 * in the daemon's scratch directory). Absent as there: extents, capped clones and fault injection, which
 * libvirt's protocol cannot carry.
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
    capabilities: { domains: true, storage: true, volumeCreate: true, volumeFormats: ["raw", "qcow2"], volumeResize: true, volumeStreams: true, volumeClone: true },
    timeoutMs: 60_000,
  });
}
