/**
 * `conn.testing` of `test:` connections: fault injection and fixtures for users' own tests.
 *
 * @module
 */
import type { DriverContext, TestingControls } from "../../core/driver.ts";
import { UnsupportedError } from "../../core/errors.ts";
import type { DomainTable } from "./domains.ts";
import type { GuestWrites } from "./guest_writes.ts";
import { commitDomains, commitPools, planFixture } from "./fixture_load.ts";
import { parseFixture } from "./fixture.ts";
import type { MemoryHost } from "./memory_host.ts";

/** What the controls reach. */
export interface TestingEnv {
  /** The connection's context (its jobs and pools). */
  readonly ctx: DriverContext;
  /** The connection's memory storage and armed failures. */
  readonly host: MemoryHost;
  /** The connection's domains. */
  readonly domains: DomainTable;
  /** The connection's simulated guest writes. */
  readonly guestWrites: GuestWrites;
}

/**
 * Loads a fixture into a live connection: checks it whole, hands its pools to core (through
 * `StorageAccess.addPools`), then defines its domains.
 *
 * @param env The connection's parts.
 * @param fixture A fixture description (see `TestFixture`).
 * @throws {TypeError} For a malformed fixture, naming the bad path; `RangeError` for a number out of range.
 * @throws {ConflictError} For a pool or domain the connection has.
 * @throws {UnsupportedError} For a fixture with pools when core's pool manager cannot add pools.
 * @example
 * ```ts
 * // Reached through conn.testing.load():
 * import { connect } from "virtkit";
 * await using conn = await connect("test:///empty");
 * await conn.testing!.load({ domains: [{ name: "web1", vcpus: 1, memoryBytes: 1 << 30, state: "running", disks: [] }] });
 * if ((await (await conn.domains.get("web1")).info()).state !== "running") throw new Error("unexpected");
 * ```
 */
export async function loadFixture(env: TestingEnv, fixture: unknown): Promise<void> {
  const checked = parseFixture(fixture);
  const plan = await planFixture(checked, { host: env.host, domains: env.domains, storage: env.ctx.storage });
  if (plan.pools.length > 0) {
    const addPools = env.ctx.storage.addPools;
    if (typeof addPools !== "function") {
      throw new UnsupportedError("testing.load", {
        driver: "test",
        detail: "this connection's pool manager cannot add pools after opening; open test:///<path>.json instead",
      });
    }
    const rollback = commitPools(plan, env.host);
    try {
      await addPools.call(env.ctx.storage, plan.pools.map(({ config }) => ({ config, active: true })));
    } catch (error) {
      rollback();
      throw error;
    }
  }
  commitDomains(plan, env.domains);
}

/**
 * Creates the controls of one connection.
 *
 * @param env The connection's parts.
 * @returns The frozen controls.
 * @example
 * ```ts
 * // The controls are conn.testing:
 * import { connect } from "virtkit";
 * await using conn = await connect("test:///default");
 * const dom = await conn.domains.get("test");
 * await dom.destroy();
 * conn.testing!.failNext("domain.start", new Error("no boot today"));
 * let message = "";
 * try { await dom.start(); } catch (error) { message = (error as Error).message; }
 * if (message !== "no boot today") throw new Error("unexpected");
 * ```
 */
export function createTestingControls(env: TestingEnv): TestingControls {
  return Object.freeze({
    failNext(operation: string, error: Error): void {
      env.host.faults.arm(operation, error);
    },
    failJob(jobId: string, error: Error, options?: { atBytes?: number }): void {
      if (typeof jobId !== "string" || jobId === "") throw new TypeError(`Invalid job id: expected a non-empty string, got ${typeof jobId}`);
      env.ctx.jobs.injectFailure(jobId, error, options);
    },
    load(fixture: unknown): Promise<void> {
      return loadFixture(env, fixture);
    },
    guestWrite(domain: string, disk: string, offset: number, bytes: Uint8Array): Promise<void> {
      return env.guestWrites.write(domain, disk, offset, bytes);
    },
  });
}
