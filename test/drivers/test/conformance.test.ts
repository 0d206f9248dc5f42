/**
 * The `test` driver against the conformance kit: on the real clock and on a virtual one, seeded
 * (`test:///default`, whose objects the cases must leave alone) and empty (`test:///empty`).
 */
import { connect, createVirtualClock, MiB } from "../../../mod.ts";
import type { ConformanceTarget } from "../../conformance/mod.ts";
import { TEST_DRIVER_CAPABILITIES } from "../../_support/test_driver_capabilities.ts";
import { describeConformance } from "../../conformance/vitest.ts";

function testTarget(uri: string, withClock: boolean): ConformanceTarget {
  const clock = withClock ? createVirtualClock() : undefined;
  return {
    connect: () => connect(uri, clock ? { clock } : {}),
    domainConfig: (name) => ({ name, vcpus: 2, memoryBytes: MiB(128), disks: [] }),
    poolConfig: (name) => ({ name, type: "memory" }),
    ...(clock ? { clock } : {}),
    capabilities: TEST_DRIVER_CAPABILITIES,
  };
}

describeConformance("test:///default, real clock", testTarget("test:///default", false));
describeConformance("test:///default, virtual clock", () => testTarget("test:///default", true));
// The three forms the adapter takes (a target, a factory, an async factory) are each exercised once here.
await describeConformance("test:///empty, virtual clock", () => Promise.resolve(testTarget("test:///empty", true)));
