/**
 * The `dir` backend against the conformance kit's storage and job cases: pools in fresh temporary
 * directories on a `test:` connection, on the real clock and on a virtual one.
 */
import path from "node:path";
import { afterAll } from "vitest";
import { connect, createVirtualClock } from "../../../mod.ts";
import type { ConformanceTarget } from "../../conformance/mod.ts";
import { describeConformance } from "../../conformance/vitest.ts";
import { registryWithDir, removeDir, scratchDir } from "./_support.ts";

const root = await scratchDir("virtkit-dir-conformance-");
afterAll(() => removeDir(root));
const registry = registryWithDir();

function dirTarget(withClock: boolean): ConformanceTarget {
  const clock = withClock ? createVirtualClock() : undefined;
  return {
    connect: () => connect("test:///empty", { registry, ...(clock ? { clock } : {}) }),
    // Each pool gets its own directory that does not exist yet: build() makes it, delete() removes it.
    poolConfig: (name) => ({ name, type: "dir", path: path.join(root, `${withClock ? "v" : "r"}-${name}`) }),
    ...(clock ? { clock } : {}),
    capabilities: { storage: true, volumeCreate: true, volumeFormats: ["raw", "qcow2"], volumeResize: true, volumeStreams: true, volumeClone: true, faultInjection: true },
  };
}

describeConformance("dir backend, real clock", dirTarget(false));
describeConformance("dir backend, virtual clock", dirTarget(true));
