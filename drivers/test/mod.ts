/**
 * The `test` driver: libvirt's "mock hypervisor for application unit tests", in memory and deterministic.
 *
 * - `test:///default` starts with the seed: pool `default-pool` (`memory`, 100 GiB) holding
 *   `template.img` (raw, 256 MiB, data and holes) and `test.qcow2` (thin qcow2 over it), and the running
 *   domain `test` (2 vCPUs, 2 GiB) with disk `vda` on `test.qcow2`, so a block pull does real work.
 * - `test:///empty` starts with nothing.
 * - `test:///abs/path/fixture.json` starts with a fixture file (see `TestFixture`).
 *
 * Each connection has its own state (libvirt shares one per process). Volumes hold real bytes, sparse in
 * memory, so streams and the copy loop run for real; jobs run on the connection's clock, so with a
 * virtual clock a 10 GiB pull "takes" its 102.4 s in milliseconds. `conn.testing` injects faults and
 * loads fixtures.
 *
 * The `memory` storage backend serves pools of `{ type: "memory", capacityBytes? }` on any connection.
 *
 * @example
 * ```ts
 * import { connect, createVirtualClock, MiB } from "virtkit";
 * const clock = createVirtualClock();
 * await using conn = await connect("test:///default", { clock });
 * const dom = await conn.domains.get("test");
 * const job = await dom.blockPull("vda", { bandwidth: MiB(100) });
 * await clock.runUntilIdle();
 * await job.wait();
 * const [vda] = await dom.disks();
 * if (vda?.backingChain.length !== 0) throw new Error("the pull left a backing chain");
 * ```
 *
 * @module
 */
import { defineHypervisorDriver } from "../../core/driver.ts";
import { defineStorageBackend } from "../../core/storage_backend.ts";
import type { MemoryPoolConfig } from "../../core/storage_pool.ts";
import { MAX_BYTES } from "../../core/units.ts";
import { TestConnection } from "./connection.ts";
import { memoryHostOf } from "./memory_host.ts";
import { MemoryPool } from "./memory_pool.ts";

export type { CheckedTestFixture, FixtureContent, FixtureDisk, FixtureDomain, FixturePool, FixtureVolume, TestFixture } from "./fixture.ts";
export { FixtureDomainSchema, FixturePoolSchema, parseFixture, TestFixtureSchema } from "./fixture.ts";
export { TEST_OPERATIONS, type TestOperation } from "./faults.ts";
export { DEFAULT_DOMAIN_UUID, DEFAULT_SEED } from "./seed.ts";

/**
 * The `test` hypervisor driver (scheme `test`).
 *
 * @example
 * ```ts
 * import { testDriver } from "./mod.ts";
 * if (testDriver.kind !== "hypervisor" || !testDriver.schemes.includes("test")) throw new Error("unexpected");
 * ```
 */
export const testDriver = defineHypervisorDriver({
  name: "test",
  schemes: ["test"],
  capabilities: ["defineDomain", "undefineDomain", "startDomain", "shutdownDomain", "destroyDomain", "suspendDomain", "resumeDomain", "domainDisks", "liveBlockPull", "liveBlockCopy", "liveBlockCommit", "setDiskSource"],
  open: (uri, ctx) => TestConnection.open(uri, ctx),
});

/**
 * The `memory` storage backend: pools of `{ name, type: "memory", capacityBytes? }` (default 100 GiB)
 * whose volumes live in the connection's memory. A volume's key and path are `/<pool>/<name>`; a qcow2
 * volume may be backed by a volume of any memory pool of the same connection. Creating (or growing) a
 * volume whose capacity exceeds the pool's free space throws `ConflictError` ("not enough free space in
 * pool"); a volume that backs another cannot be deleted (`ConflictError`). The storage survives
 * `stop()`/`start()` and undefine/define, like a directory, until `pool.delete()`.
 *
 * @example
 * ```ts
 * import { connect, MiB } from "virtkit";
 * await using conn = await connect("test:///empty");
 * const pool = await conn.pools.create({ name: "scratch", type: "memory", capacityBytes: MiB(64) });
 * const volume = await pool.volumes.create({ name: "a.img", capacityBytes: MiB(8) });
 * if (volume.path !== "/scratch/a.img") throw new Error("unexpected");
 * ```
 */
export const memoryBackend = defineStorageBackend<MemoryPoolConfig>({
  name: "memory",
  capabilities: ["build", "start", "stop", "delete", "createVolume", "deleteVolume", "resizeVolume", "openVolume"],
  validate(config) {
    for (const key of Object.keys(config)) {
      if (!["name", "type", "capacityBytes"].includes(key)) {
        throw new TypeError(`Invalid config of memory pool "${config.name}": unknown field "${key}"`);
      }
    }
    const capacity: unknown = config.capacityBytes;
    if (capacity === undefined) return;
    if (typeof capacity !== "number") {
      throw new TypeError(`Invalid capacityBytes of memory pool "${config.name}": expected a number, got ${typeof capacity}`);
    }
    if (!Number.isInteger(capacity) || capacity <= 0 || capacity > MAX_BYTES) {
      throw new RangeError(`Invalid capacityBytes of memory pool "${config.name}": ${capacity} is not a whole number of bytes above 0`);
    }
  },
  open: (config, ctx) => Promise.resolve(new MemoryPool(config, memoryHostOf(ctx))),
});
