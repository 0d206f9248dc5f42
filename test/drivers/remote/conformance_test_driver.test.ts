/**
 * The conformance kit against `remote` -> a real libvirtd's `test` driver, for what that pair supports:
 * domains (define, get, list, start, suspend, resume, destroy, undefine, events). Storage through the
 * remote driver is not mapped yet, so the storage, volume and job cases are declared absent (skipped by
 * the kit, never faked); fault injection is the virtkit test driver's own and absent here too.
 */
import { afterAll } from "vitest";
import { connect, MiB } from "../../../mod.ts";
import { describeConformance } from "../../conformance/vitest.ts";
import { type RunningLibvirtd, skipLibvirtd, startLibvirtd } from "../../_support/libvirtd.ts";

let daemon: RunningLibvirtd | undefined;
afterAll(async () => {
  await daemon?.stop();
});
const ready = skipLibvirtd ? undefined : startLibvirtd({ driver: "test" }).then((d) => (daemon = d));

if (ready) {
  describeConformance("remote -> libvirtd test driver", {
    connect: async () => connect((await ready).uri("test")),
    domainConfig: (name) => ({ name, vcpus: 1, memoryBytes: MiB(64), disks: [] }),
    capabilities: { domains: true },
  });
}
