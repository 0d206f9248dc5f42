import { describe, expect, it } from "vitest";
import { TEST_DRIVER_CAPABILITIES } from "../_support/test_driver_capabilities.ts";
import type { Connection } from "../../core/connection.ts";
import {
  allCases,
  checkTarget,
  type ConformanceCase,
  type ConformanceTarget,
  eventCases,
  hypervisorCases,
  jobCases,
  planCases,
  skipReason,
  storageCases,
} from "./mod.ts";
import { describeConformance } from "./vitest.ts";

/** Just enough of a connection for the connection case; every other member is absent on purpose. */
function bareConnection(closed: { count: number }): Connection {
  const close = () => {
    closed.count++;
    return Promise.resolve();
  };
  return { uri: "bare:///", driver: "bare", close, [Symbol.asyncDispose]: close } as unknown as Connection;
}

function bareTarget(closed = { count: 0 }): ConformanceTarget {
  return { connect: () => Promise.resolve(bareConnection(closed)) };
}

const everything: ConformanceTarget = {
  connect: () => Promise.reject(new Error("not used")),
  domainConfig: (name) => ({ name, vcpus: 1, memoryBytes: 1 << 26, disks: [] }),
  poolConfig: (name) => ({ name, type: "memory" }),
  capabilities: TEST_DRIVER_CAPABILITIES,
};

describe("case lists", () => {
  it("have unique names of the form 'area: behaviour', and each has a run function", () => {
    const all = [...hypervisorCases, ...storageCases, ...jobCases, ...eventCases];
    expect(new Set(all.map((c) => c.name)).size).toBe(all.length);
    for (const c of all) {
      expect(c.name).toMatch(/^[a-z ]+: \S/);
      expect(typeof c.run).toBe("function");
    }
    expect(allCases(everything).map((p) => p.name)).toEqual(all.map((c) => c.name));
  });

  it("are frozen, so a vendor cannot change what every driver is held to", () => {
    for (const list of [hypervisorCases, storageCases, jobCases, eventCases]) expect(Object.isFrozen(list)).toBe(true);
  });

  it("cover the areas the kit promises", () => {
    const names = allCases(everything).map((p) => p.name).join("\n");
    for (const text of ["StateError", "NotFoundError", "ConflictError", "TypeError", "extents()", "subscribe({ since })", "abort()", "dismiss()", "setSpeed()", "blockPull()"]) {
      expect(names).toContain(text);
    }
  });
});

describe("skipReason() and planCases()", () => {
  it("run everything for a target that declares every capability", () => {
    expect(allCases(everything).filter((p) => p.skip !== undefined)).toEqual([]);
  });

  it("skip cases whose capabilities are not declared, naming what is missing, without a run function", () => {
    const target: ConformanceTarget = { ...everything, capabilities: { ...everything.capabilities, volumeFormats: ["raw"], faultInjection: false } };
    const planned = allCases(target);
    const failure = planned.find((p) => p.name.includes("a failed clone"))!;
    expect(failure.skip).toBe("needs capabilities.faultInjection");
    expect(failure.run).toBeUndefined();
    const pull = planned.find((p) => p.name.includes("blockPull()"))!;
    expect(pull.skip).toBe('needs capabilities.volumeFormats to include "qcow2"');
    // The failed clone, and the six block job cases (their disks are qcow2).
    expect(planned.filter((p) => p.skip !== undefined).length).toBe(7);
  });

  it("treat an array requirement as any one of it", () => {
    const testCase: ConformanceCase = { name: "x: y", requires: [["domains", "storage"]], run: () => Promise.resolve() };
    expect(skipReason(testCase, bareTarget())).toBe("needs one of capabilities.domains, capabilities.storage");
    expect(skipReason(testCase, { ...everything, capabilities: { storage: true } })).toBeUndefined();
  });

  it("leave only the connection case runnable for a target that declares nothing", () => {
    const runnable = allCases(bareTarget()).filter((p) => p.skip === undefined);
    expect(runnable.map((p) => p.name)).toEqual([hypervisorCases[0]!.name]);
  });

  it("bind runnable cases to the target", async () => {
    const closed = { count: 0 };
    const [first] = planCases(bareTarget(closed), [hypervisorCases[0]!]);
    await first!.run!();
    expect(closed.count).toBe(2);
  });

  it("refuse duplicate case names", () => {
    const c: ConformanceCase = { name: "x: y", run: () => Promise.resolve() };
    expect(() => planCases(bareTarget(), [c, c])).toThrow(TypeError);
  });
});

describe("checkTarget()", () => {
  it("accepts a complete target", () => {
    checkTarget(everything);
    checkTarget(bareTarget());
  });

  it("refuses a target without connect(), or missing the config a capability needs", () => {
    expect(() => checkTarget({} as ConformanceTarget)).toThrow(/connect\(\)/);
    expect(() => checkTarget(null as unknown as ConformanceTarget)).toThrow(TypeError);
    expect(() => checkTarget({ ...bareTarget(), capabilities: { domains: true } })).toThrow(/domainConfig/);
    expect(() => checkTarget({ ...bareTarget(), capabilities: { storage: true } })).toThrow(/poolConfig/);
    expect(() => checkTarget({ ...bareTarget(), capabilities: { volumeFormats: ["vmdk" as "raw"] } })).toThrow(/"vmdk"/);
    expect(() => allCases({ ...bareTarget(), capabilities: { domains: true } })).toThrow(TypeError);
  });
});

describe("connection case", () => {
  it("fails when close() is not idempotent", async () => {
    const target: ConformanceTarget = {
      connect() {
        let open = true;
        const close = () => {
          if (!open) return Promise.reject(new Error("already closed"));
          open = false;
          return Promise.resolve();
        };
        return Promise.resolve({ uri: "x:///", driver: "x", close, [Symbol.asyncDispose]: close } as unknown as Connection);
      },
    };
    await expect(hypervisorCases[0]!.run(target)).rejects.toThrow("already closed");
  });
});

// The adapter registers through vitest (or the Deno shim); a bare target declares no capability, so every
// case that needs one is registered as skipped with its reason (the factory forms run in
// test/drivers/test/conformance.test.ts against a full target).
describeConformance("describeConformance() with a bare target", bareTarget());
