/**
 * The conformance kit against `remote` -> a real libvirtd's `qemu` driver (with real QEMU) and its
 * storage driver (`dir` pools in a scratch directory), for what that pair supports. Declared absent,
 * because libvirt has no API for them (never faked): `volume.extents()` (so the stream cases, which need
 * it, are skipped; upload and download are covered by storage.test.ts), capped clones (the job cases
 * run on those), and the virtkit test driver's fault injection.
 */
import { join } from "node:path";
import { afterAll } from "vitest";
import { connect, MiB } from "../../../mod.ts";
import { describeConformance } from "../../conformance/vitest.ts";
import { type RunningLibvirtd, skipLibvirtd, startLibvirtd } from "../../_support/libvirtd.ts";

let daemon: RunningLibvirtd | undefined;
afterAll(async () => {
  await daemon?.stop();
});
const ready = skipLibvirtd ? undefined : startLibvirtd({ driver: "qemu" }).then((d) => (daemon = d));
let pools = 0;

if (ready) {
  describeConformance("remote -> libvirtd qemu driver", {
    connect: async () => connect((await ready).uri("qemu")),
    domainConfig: (name) => ({ name, vcpus: 1, memoryBytes: MiB(64), machine: "q35", disks: [] }),
    poolConfig: (name) => ({ name, type: "dir", path: join(daemon!.mkdir("pools"), `${name}-${++pools}`) }),
    capabilities: { domains: true, storage: true, volumeCreate: true, volumeFormats: ["raw", "qcow2"], volumeResize: true },
    timeoutMs: 60_000,
  });
}
