/**
 * The `qemu` driver against the conformance kit: domains that `-machine none` QEMU starts without a
 * guest OS, plus the storage and job cases on `dir` pools reached through the qemu connection. Skipped
 * locally without QEMU; under CI=true the cases run (and fail when QEMU is missing).
 *
 * The block job cases run twice: on shut-off domains (core's offline jobs on `dir` qcow2 volumes) and on
 * running ones (QEMU's block-stream, blockdev-mirror and block-commit).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
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
    blockPull: true,
    blockCopy: true,
    blockCommit: true,
    liveBlockJobs: true,
  },
};

describeConformance(`qemu:///session${skipReal ? " (QEMU not installed: skipped)" : ""}`, target);
