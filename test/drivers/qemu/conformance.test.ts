/**
 * The `qemu` driver against the conformance kit: domains that `-machine none` QEMU starts without a
 * guest OS, plus the storage and job cases on `dir` pools reached through the qemu connection. Skipped
 * locally without QEMU; under CI=true the cases run (and fail when QEMU is missing).
 *
 * `blockPull` is not declared: the kit's case pulls on a shut-off domain and reads the qcow2 volumes
 * through the storage layer, which the `dir` backend cannot do until the image engine exists (it throws
 * UnsupportedError for qcow2 I/O). Pulls on running domains are covered by block_pull.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { dirBackend } from "../../../drivers/dir/mod.ts";
import type { ConformanceTarget } from "../../conformance/mod.ts";
import { describeConformance } from "../../conformance/vitest.ts";
import { domainConfig, killAll, qemuRegistry, skipReal } from "./_support.ts";

const root = mkdtempSync(join(tmpdir(), "vk-qemu-conformance-"));
const stateDir = join(root, "state");
afterAll(() => {
  killAll(stateDir);
  rmSync(root, { recursive: true, force: true });
});

const registry = qemuRegistry();
if (!registry.list("storage").some((entry) => entry.name === "dir")) registry.register(dirBackend);

const target: ConformanceTarget = {
  connect: () => registry.connect("qemu:///session", { stateDir }),
  domainConfig: (name) => domainConfig(name),
  poolConfig: (name) => ({ name, type: "dir", path: join(root, `pool-${name}`) }),
  capabilities: skipReal ? {} : {
    domains: true,
    storage: true,
    volumeCreate: true,
    volumeFormats: ["raw", "qcow2"],
    volumeStreams: true,
    volumeResize: true,
    volumeClone: true,
  },
};

describeConformance(`qemu:///session${skipReal ? " (QEMU not installed: skipped)" : ""}`, target);
