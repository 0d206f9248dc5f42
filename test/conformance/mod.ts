/**
 * virtkit's conformance kit (`virtkit/testing`): runner-agnostic cases that hold every driver, built-in
 * or third-party, to the same behaviour through the public API only. Describe your driver as a
 * {@linkcode ConformanceTarget}, then run {@linkcode allCases} with any test runner, or use
 * `describeConformance` from `virtkit/testing/vitest`.
 *
 * @example Run the kit with a plain loop (any runner works the same way)
 * ```ts
 * import { allCases, type ConformanceTarget } from "virtkit/testing";
 * import { connect, createVirtualClock, MiB } from "virtkit";
 * const clock = createVirtualClock();
 * const target: ConformanceTarget = {
 *   connect: () => connect("test:///empty", { clock }),
 *   domainConfig: (name) => ({ name, vcpus: 1, memoryBytes: MiB(64), disks: [] }),
 *   clock,
 *   capabilities: { domains: true },
 * };
 * for (const planned of allCases(target)) {
 *   if (planned.skip === undefined) await planned.run();
 * }
 * ```
 *
 * @module virtkit/testing
 */
import { eventCases } from "./event_cases.ts";
import { hypervisorCases } from "./domain_cases.ts";
import { blockJobCases } from "./block_job_cases.ts";
import { volumeJobCases } from "./job_cases.ts";
import { poolCases } from "./pool_cases.ts";
import { volumeCases } from "./volume_cases.ts";
import type { Capability, ConformanceCase, ConformanceTarget, PlannedCase } from "./types.ts";

export { assert, assertEquals, assertRejects, ConformanceError, describeError, type ErrorClass } from "./assert.ts";
export { eventCases } from "./event_cases.ts";
export { hypervisorCases } from "./domain_cases.ts";
export type { Capability, ConformanceCapabilities, ConformanceCase, ConformanceTarget, PlannedCase } from "./types.ts";

/**
 * Cases for storage: pools (capability `storage`) and volumes (`volumeCreate`, `raw`, and for some
 * `volumeResize` or `volumeStreams`).
 *
 * @example
 * ```ts
 * import { storageCases } from "virtkit/testing";
 * if (!storageCases.some((c) => c.name.startsWith("pools:"))) throw new Error("unexpected");
 * ```
 */
export const storageCases: readonly ConformanceCase[] = Object.freeze([...poolCases, ...volumeCases]);

/**
 * Cases for jobs: volume clones (capabilities `storage`, `volumeCreate`, `raw`, `volumeStreams`,
 * `volumeClone`; failure also `faultInjection`) and block pulls (`domains`, `qcow2`, `blockPull`, ...).
 *
 * @example
 * ```ts
 * import { jobCases } from "virtkit/testing";
 * if (!jobCases.some((c) => c.name.includes("abort()"))) throw new Error("unexpected");
 * ```
 */
export const jobCases: readonly ConformanceCase[] = Object.freeze([...volumeJobCases, ...blockJobCases]);

const FORMATS = ["raw", "qcow2"];

function declares(target: ConformanceTarget, capability: Capability): boolean {
  const capabilities = target.capabilities ?? {};
  if (capability === "raw" || capability === "qcow2") return capabilities.volumeFormats?.includes(capability) ?? false;
  return capabilities[capability] === true;
}

function describeNeed(capability: Capability): string {
  return capability === "raw" || capability === "qcow2"
    ? `capabilities.volumeFormats to include "${capability}"`
    : `capabilities.${capability}`;
}

/**
 * Why a case cannot run against a target, or `undefined` when it can.
 *
 * @param testCase The case.
 * @param target The driver under test.
 * @returns `"needs capabilities.volumeClone, capabilities.faultInjection"`, or `undefined`.
 * @example
 * ```ts
 * import { jobCases, skipReason } from "virtkit/testing";
 * const reason = skipReason(jobCases[0]!, { connect: () => Promise.reject(new Error("unused")) });
 * if (!reason?.startsWith("needs capabilities.")) throw new Error(String(reason));
 * ```
 */
export function skipReason(testCase: ConformanceCase, target: ConformanceTarget): string | undefined {
  const missing: string[] = [];
  for (const need of testCase.requires ?? []) {
    if (typeof need === "string") {
      if (!declares(target, need)) missing.push(describeNeed(need));
    } else if (!need.some((one) => declares(target, one))) {
      missing.push(`one of ${need.map(describeNeed).join(", ")}`);
    }
  }
  return missing.length === 0 ? undefined : `needs ${missing.join(", ")}`;
}

/**
 * Checks that a target is complete for what it declares.
 *
 * @param target The driver under test.
 * @throws {TypeError} When `connect` is missing, or a declared capability lacks the config function it needs.
 * @example
 * ```ts
 * import { checkTarget } from "virtkit/testing";
 * let threw = false;
 * try {
 *   checkTarget({ connect: () => Promise.reject(new Error("unused")), capabilities: { domains: true } });
 * } catch (error) {
 *   threw = error instanceof TypeError;
 * }
 * if (!threw) throw new Error("a target declaring domains needs domainConfig()");
 * ```
 */
export function checkTarget(target: ConformanceTarget): void {
  if (typeof target !== "object" || target === null || typeof target.connect !== "function") {
    throw new TypeError("Invalid conformance target: expected an object with a connect() function");
  }
  const capabilities = target.capabilities ?? {};
  if (capabilities.domains && typeof target.domainConfig !== "function") {
    throw new TypeError("Invalid conformance target: capabilities.domains needs a domainConfig(name) function");
  }
  if (capabilities.storage && typeof target.poolConfig !== "function") {
    throw new TypeError("Invalid conformance target: capabilities.storage needs a poolConfig(name) function");
  }
  for (const format of capabilities.volumeFormats ?? []) {
    if (!FORMATS.includes(format)) {
      throw new TypeError(`Invalid conformance target: unknown volume format "${format}" (known: ${FORMATS.join(", ")})`);
    }
  }
}

/**
 * Plans `cases` against a target: each comes back runnable (bound to the target) or with the reason
 * it is skipped. Runners register skipped ones as skipped, never as passed.
 *
 * @param target The driver under test.
 * @param cases The cases, such as a vendor's own list or `[...jobCases]`.
 * @returns One entry per case, in order.
 * @throws {TypeError} When the target is incomplete (see {@linkcode checkTarget}) or two cases share a name.
 * @example
 * ```ts
 * import { planCases, jobCases } from "virtkit/testing";
 * const planned = planCases({ connect: () => Promise.reject(new Error("unused")) }, jobCases);
 * if (!planned.every((p) => p.skip !== undefined && p.run === undefined)) throw new Error("unexpected");
 * ```
 */
export function planCases(target: ConformanceTarget, cases: readonly ConformanceCase[]): PlannedCase[] {
  checkTarget(target);
  const names = new Set<string>();
  return cases.map((testCase): PlannedCase => {
    if (names.has(testCase.name)) throw new TypeError(`Two conformance cases are named "${testCase.name}"`);
    names.add(testCase.name);
    const skip = skipReason(testCase, target);
    if (skip !== undefined) return { name: testCase.name, skip };
    return { name: testCase.name, run: () => testCase.run(target) };
  });
}

/**
 * Every case of the kit (hypervisor, storage, job and event cases), planned against a target by its
 * declared capabilities.
 *
 * @param target The driver under test.
 * @returns One entry per case: runnable, or skipped with the reason.
 * @throws {TypeError} When the target is incomplete.
 * @example
 * ```ts
 * import { allCases } from "virtkit/testing";
 * const planned = allCases({ connect: () => Promise.reject(new Error("unused")) });
 * const runnable = planned.filter((p) => p.skip === undefined);
 * if (runnable.length !== 1 || !runnable[0]!.name.startsWith("connection:")) throw new Error("unexpected");
 * ```
 */
export function allCases(target: ConformanceTarget): PlannedCase[] {
  return planCases(target, [...hypervisorCases, ...storageCases, ...jobCases, ...eventCases]);
}
