/**
 * Conformance cases for storage pools: define, build, start, refresh, stop and undefine with their state
 * rules and events.
 *
 * @module
 */
import { ConflictError, NotFoundError, StateError } from "../../core/errors.ts";
import type { StoragePool } from "../../core/storage_pool.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { assertAbortedWith, assertIncreasingSeq, poolConfig, record, removePool, scoped, uniqueName, withConnection } from "./_support.ts";
import type { ConformanceCase } from "./types.ts";

async function expectPoolState(pool: StoragePool, state: "active" | "inactive", after: string): Promise<void> {
  assertEquals((await pool.info()).state, state, `state of pool "${pool.name}" after ${after}`);
}

const poolLifecycle: ConformanceCase = {
  name: "pools: define, build, start, refresh, stop and undefine follow the state rules",
  requires: ["storage"],
  run: (target) =>
    withConnection(target, async (conn) => {
      const config = poolConfig(target, uniqueName("pool"));
      const pool = await conn.pools.define(config);
      let defined = true;
      await scoped(async () => {
        assertEquals([pool.name, pool.type], [config.name, config.type], "define() returns the pool");
        await expectPoolState(pool, "inactive", "define()");
        assert((await conn.pools.list()).some((p) => p.name === config.name), "list() includes the defined pool");
        assertEquals((await conn.pools.get(config.name)).name, config.name, "get() finds the pool");
        await assertRejects(() => pool.volumes.list(), StateError, undefined, `volumes.list() on inactive pool "${pool.name}"`);
        await assertRejects(() => pool.stop(), StateError, undefined, `stop() on inactive pool "${pool.name}"`);
        await pool.build();
        await pool.start();
        await expectPoolState(pool, "active", "start()");
        await assertRejects(() => pool.start(), StateError, undefined, `start() on active pool "${pool.name}"`);
        await assertRejects(() => pool.undefine(), StateError, undefined, `undefine() on active pool "${pool.name}"`);
        await pool.refresh();
        const info = await pool.info();
        for (const key of ["capacityBytes", "allocationBytes", "availableBytes"] as const) {
          assert(Number.isInteger(info[key]) && info[key] >= 0, `pool info ${key} is a byte count (got ${info[key]})`);
        }
        assertEquals(await pool.volumes.list(), [], "a new scratch pool has no volumes");
        await pool.stop();
        await expectPoolState(pool, "inactive", "stop()");
        await pool.undefine();
        defined = false;
        const error = await assertRejects(() => conn.pools.get(config.name), NotFoundError, undefined, "get() after undefine()");
        assertEquals(error.objectType, "pool", "NotFoundError.objectType");
        assert(!(await conn.pools.list()).some((p) => p.name === config.name), "list() no longer has the pool");
      }, async () => {
        if (defined) await removePool(pool);
      });
    }),
};

const poolErrors: ConformanceCase = {
  name: "pools: unknown names throw NotFoundError, taken names ConflictError, invalid names TypeError",
  requires: ["storage"],
  run: (target) =>
    withConnection(target, async (conn) => {
      const missing = uniqueName("missing");
      const error = await assertRejects(() => conn.pools.get(missing), NotFoundError, missing, `pools.get("${missing}")`);
      assertEquals(error.objectType, "pool", "NotFoundError.objectType");
      const config = poolConfig(target, uniqueName("pool"));
      const pool = await conn.pools.define(config);
      await scoped(async () => {
        await assertRejects(() => conn.pools.define(config), ConflictError, undefined, "a second pools.define()");
        await assertRejects(() => conn.pools.create(config), ConflictError, undefined, "pools.create() of a taken name");
        assertEquals((await conn.pools.list()).filter((p) => p.name === config.name).length, 1, "pools named so");
      }, () => removePool(pool));
      const before = (await conn.pools.list()).length;
      for (const name of ["", "..", "a/b", "nul\0byte"]) {
        await assertRejects(() => conn.pools.define({ ...config, name }), TypeError, undefined, `pools.define() named ${JSON.stringify(name)}`);
      }
      assertEquals((await conn.pools.list()).length, before, "no pool was defined by the refused calls");
    }),
};

const poolEvents: ConformanceCase = {
  name: "pools: the lifecycle emits pool events naming the pool, with increasing seq",
  requires: ["storage"],
  run: (target) =>
    withConnection(target, async (conn) => {
      const recording = record(conn.events, "pool:*");
      const config = poolConfig(target, uniqueName("pool"));
      const pool = await conn.pools.create(config);
      await scoped(async () => {
        await pool.refresh();
        await pool.stop();
      }, () => removePool(pool));
      recording.stop();
      const types = recording.events.filter((e) => e.pool === config.name).map((e) => e.type);
      for (const type of ["pool:defined", "pool:started", "pool:refreshed", "pool:stopped", "pool:undefined"] as const) {
        assert(types.includes(type), `a ${type} event names pool "${config.name}" (got ${JSON.stringify(types)})`);
      }
      const order = ["pool:defined", "pool:started", "pool:stopped", "pool:undefined"].map((t) => types.indexOf(t as never));
      assertEquals([...order].sort((a, b) => a - b), order, "pool events come in lifecycle order");
      assertIncreasingSeq(recording.events, "pool events");
    }),
};

const poolAbortedSignal: ConformanceCase = {
  name: "pools: a call with an aborted signal rejects with the signal's own reason and changes nothing",
  requires: ["storage"],
  run: (target) =>
    withConnection(target, async (conn) => {
      const reason = new Error("the conformance kit aborted this call");
      const signal = AbortSignal.abort(reason);
      const config = poolConfig(target, uniqueName("pool"));
      await assertAbortedWith(() => conn.pools.define(config, { signal }), reason, "pools.define()");
      assert(!(await conn.pools.list()).some((p) => p.name === config.name), "an aborted define() defines nothing");
      const pool = await conn.pools.create(config);
      await scoped(async () => {
        await assertAbortedWith(() => pool.info({ signal }), reason, "pool.info()");
        await assertAbortedWith(() => pool.refresh({ signal }), reason, "pool.refresh()");
        await assertAbortedWith(() => pool.volumes.list({ signal }), reason, "volumes.list()");
        await assertAbortedWith(() => pool.volumes.get("absent", { signal }), reason, "volumes.get()");
        await assertAbortedWith(() => pool.stop({ signal }), reason, "pool.stop()");
        await expectPoolState(pool, "active", "an aborted stop()");
      }, () => removePool(pool));
    }),
};

/**
 * Cases for storage pools (capability `storage`).
 *
 * @example
 * ```ts
 * import { poolCases } from "./pool_cases.ts";
 * if (!poolCases.every((c) => c.requires?.includes("storage"))) throw new Error("unexpected");
 * ```
 */
export const poolCases: readonly ConformanceCase[] = Object.freeze([poolLifecycle, poolErrors, poolEvents, poolAbortedSignal]);
