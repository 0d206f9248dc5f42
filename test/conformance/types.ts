/**
 * What a driver author hands the conformance kit, and what a case is.
 *
 * @module
 */
import type { VirtualClock } from "../../core/clock.ts";
import type { Connection } from "../../core/connection.ts";
import type { DomainConfig } from "../../core/domain.ts";
import type { PoolConfig } from "../../core/storage_pool.ts";

/**
 * What a driver can do, as the kit asks. A case that needs something the target does not declare is
 * reported as skipped (never run, never passed). Leave out what the driver cannot do.
 */
export interface ConformanceCapabilities {
  /** Domains: define, get, list, start, suspend, resume, destroy, undefine (needs `domainConfig`). */
  domains?: boolean;
  /** Pools: define, build, start, refresh, stop, undefine (needs `poolConfig`). */
  storage?: boolean;
  /** `pool.volumes.create()`, `volume.delete()`, `conn.volumes.lookup()`. */
  volumeCreate?: boolean;
  /** Formats `volumes.create()` accepts. */
  volumeFormats?: readonly ("raw" | "qcow2")[];
  /** `volume.resize()` (growing). */
  volumeResize?: boolean;
  /** `volume.upload()`, `volume.download()` and `volume.extents()`. */
  volumeStreams?: boolean;
  /** `pool.volumes.clone()` as a job; the job cases run on clones. */
  volumeClone?: boolean;
  /** `domain.blockPull()` on a qcow2 disk over a raw backing volume. */
  blockPull?: boolean;
  /** `domain.blockCopy()` with `ready`, `abort()` and `finalize()`. */
  blockCopy?: boolean;
  /** `domain.blockCommit()` of the active image with `ready` and `finalize()`. */
  blockCommit?: boolean;
  /** The block job cases also run on started domains (the driver's live path), not only on shut-off ones. */
  liveBlockJobs?: boolean;
  /** `conn.testing.failJob()` (the `test` driver's fault injection). */
  faultInjection?: boolean;
}

/** One thing a case can need: a capability, or a volume format in `volumeFormats`. */
export type Capability = Exclude<keyof ConformanceCapabilities, "volumeFormats"> | "raw" | "qcow2";

/**
 * A driver under test, as its author describes it.
 *
 * @example The built-in test driver
 * ```ts
 * import type { ConformanceTarget } from "virtkit/testing";
 * import { connect, createVirtualClock, MiB } from "virtkit";
 * const clock = createVirtualClock();
 * const target: ConformanceTarget = {
 *   connect: () => connect("test:///empty", { clock }),
 *   domainConfig: (name) => ({ name, vcpus: 1, memoryBytes: MiB(64), disks: [] }),
 *   poolConfig: (name) => ({ name, type: "memory" }),
 *   clock,
 *   capabilities: { domains: true, storage: true, volumeCreate: true, volumeFormats: ["raw"] },
 * };
 * if (typeof target.connect !== "function") throw new Error("unexpected");
 * ```
 */
export interface ConformanceTarget {
  /**
   * Opens a new connection. Every case opens its own and closes it at the end. Objects a case makes are
   * named uniquely and removed again, so connections may share state (as `test:///default` does).
   */
  connect(): Promise<Connection>;
  /** A definable, startable domain named `name` (no disks needed). Required with `capabilities.domains`. */
  domainConfig?(name: string): DomainConfig;
  /**
   * A pool named `name` on a scratch location that `pools.create()` can define, build and start, and
   * that the kit stops, deletes (when supported) and undefines again. Required with `capabilities.storage`.
   */
  poolConfig?(name: string): PoolConfig;
  /**
   * The virtual clock the connections' jobs run on, when they do: cases then move it forward instead of
   * waiting, which makes capped jobs deterministic.
   */
  clock?: VirtualClock;
  /** What the driver can do; absent entries are skipped. */
  capabilities?: ConformanceCapabilities;
  /** Longest a case waits for a job or stream on the real clock, in ms (default 20 000). */
  timeoutMs?: number;
}

/**
 * One conformance check. `run` opens its connections through the target, exercises the public API only,
 * and throws (a `ConformanceError`, or the driver's own unexpected error) when the driver is wrong.
 *
 * @example A vendor's own extra case
 * ```ts
 * import type { ConformanceCase } from "virtkit/testing";
 * const listsPools: ConformanceCase = {
 *   name: "pools: list() resolves to an array",
 *   requires: ["storage"],
 *   async run(target) {
 *     const conn = await target.connect();
 *     try {
 *       if (!Array.isArray(await conn.pools.list())) throw new Error("not an array");
 *     } finally {
 *       await conn.close();
 *     }
 *   },
 * };
 * if (listsPools.requires?.[0] !== "storage") throw new Error("unexpected");
 * ```
 */
export interface ConformanceCase {
  /** Reads "area: behaviour", e.g. `"domains: start() on a running domain throws StateError"`. */
  readonly name: string;
  /** What the target must declare for the case to run; each entry is needed (an array entry: any one of it). */
  readonly requires?: readonly (Capability | readonly Capability[])[];
  /** Runs the check. */
  run(target: ConformanceTarget): Promise<void>;
}

/** A case as a runner registers it: either runnable, or skipped with the reason. */
export type PlannedCase =
  | {
    /** The case's name. */
    readonly name: string;
    /** Absent: the case runs. */
    readonly skip?: undefined;
    /** Runs the case against the target it was planned for. */
    run(): Promise<void>;
  }
  | {
    /** The case's name. */
    readonly name: string;
    /** Why it is skipped (`'needs capabilities.volumeClone'`). */
    readonly skip: string;
    /** A skipped case has no `run`: it must not be passed. */
    readonly run?: undefined;
  };
