/**
 * The conformance kit with virtkit's own remote driver against virtkitd (test:///default served over a
 * Unix socket): the same cases the remote driver passes against a real libvirtd's test driver.
 */
import { afterAll } from "vitest";
import { connect, MiB } from "../../mod.ts";
import { describeConformance } from "../conformance/vitest.ts";
import { skipDaemon, startVirtkitd, type VirtkitdProcess } from "./_support/virtkitd.ts";

let daemon: VirtkitdProcess | undefined;
afterAll(async () => {
  await daemon?.stop();
});
const ready = skipDaemon ? undefined : startVirtkitd().then((d) => (daemon = d));

if (ready) {
  describeConformance("remote -> virtkitd (test:///default)", {
    connect: async () => connect((await ready).uri("test:///default")),
    domainConfig: (name) => ({ name, vcpus: 1, memoryBytes: MiB(64), disks: [] }),
    capabilities: { domains: true },
  });
}
