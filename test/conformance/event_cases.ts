/**
 * Conformance cases for the event bus as a driver feeds it: job event order and outcome payloads,
 * replay with `subscribe({ since })`, and unsubscribing.
 *
 * @module
 */
import type { Connection } from "../../core/connection.ts";
import type { CoreEvent, EventPattern } from "../../core/events.ts";
import { MiB } from "../../core/units.ts";
import { assert, assertEquals, ConformanceError, describeError } from "./assert.ts";
import {
  assertIncreasingSeq,
  drive,
  filledVolume,
  poolConfig,
  record,
  uniqueName,
  withConnection,
  withDeadline,
  withPool,
} from "./_support.ts";
import type { ConformanceCase, ConformanceTarget } from "./types.ts";

/**
 * What the kit's throwing listener throws. The bus logs a listener's error with its stack; this one is
 * expected, so its "stack" is one line that says so instead of a trace that looks like breakage.
 */
const DELIBERATE_LISTENER_ERROR = Object.assign(new Error("a listener of the conformance kit fails on purpose"), {
  stack: "Error: a listener of the conformance kit fails on purpose (expected: the bus must go on delivering to the others)",
});

/** Something that makes two events (defined, then undefined) naming a fresh object. */
interface EventSource {
  pattern: EventPattern;
  /** Defines and undefines a new object; returns its name. */
  cycle(): Promise<string>;
  /** The name an event of this source is about. */
  nameOf(event: CoreEvent): string | undefined;
}

/** Domains when the target has them, pools otherwise (the case requires one of the two). */
function eventSource(target: ConformanceTarget, conn: Connection): EventSource {
  if (target.capabilities?.domains && target.domainConfig) {
    const makeConfig = target.domainConfig.bind(target);
    return {
      pattern: "domain:*",
      async cycle() {
        const domain = await conn.domains.define(makeConfig(uniqueName("ev")));
        await domain.undefine();
        return domain.name;
      },
      nameOf: (event) => ("domain" in event && typeof event.domain === "string" ? event.domain : undefined),
    };
  }
  return {
    pattern: "pool:*",
    async cycle() {
      const pool = await conn.pools.define(poolConfig(target, uniqueName("ev")));
      await pool.undefine();
      return pool.name;
    },
    nameOf: (event) => ("pool" in event && typeof event.pool === "string" ? event.pool : undefined),
  };
}

const jobEventOrder: ConformanceCase = {
  name: "events: one job's events come in order: job:created, job:state (running ... completed), job:completed",
  requires: ["storage", "volumeCreate", "raw", "volumeStreams", "volumeClone"],
  run: (target) =>
    withConnection(target, (conn) =>
      withPool(target, conn, async (pool) => {
        const size = MiB(4);
        const { volume: source } = await filledVolume(target, pool, size, 6);
        const recording = record(conn.events, "job:*");
        // On a virtual clock a capped clone takes a few virtual seconds, long enough for progress events.
        const job = await pool.volumes.clone(source, { name: uniqueName("clone"), bandwidth: target.clock ? MiB(1) : 0 });
        await drive(target, job.wait(), `clone job "${job.id}"`);
        recording.stop();
        const mine = recording.events.filter((e) => e.job.id === job.id);
        const types = mine.map((e) => e.type);
        assertEquals(types[0], "job:created", "the first event of a job");
        assertEquals(types.filter((t) => t === "job:completed").length, 1, `job:completed events (types: ${types.join(", ")})`);
        assert(!types.includes("job:failed") && !types.includes("job:aborted"), "no failure event for a completed job");
        const states = mine.filter((e): e is CoreEvent<"job:state"> => e.type === "job:state");
        let previous = mine[0]!.job.state;
        for (const e of states) {
          assertEquals(e.previous, previous, `job:state to "${e.job.state}": previous`);
          previous = e.job.state;
        }
        assert(states.some((e) => e.job.state === "running"), "a job:state event reports running");
        assertEquals(previous, "completed", "the last job:state event reports completed");
        const completedAt = types.indexOf("job:completed");
        assert(completedAt > types.lastIndexOf("job:progress"), "job:completed comes after every job:progress");
        const completed = mine[completedAt]!;
        assertEquals([completed.job.state, completed.job.cur, completed.job.end], ["completed", size, size], "job:completed's job snapshot");
        let cur = 0;
        for (const e of mine.filter((x) => x.type === "job:progress")) {
          assert(e.job.cur >= cur && e.job.cur <= size && e.job.end === size, `job:progress cur ${e.job.cur} of ${e.job.end} after ${cur}`);
          cur = e.job.cur;
        }
        if (target.clock) assert(types.includes("job:progress"), "a capped clone of 4 seconds reports progress");
        assertIncreasingSeq(mine, "job events");
        for (let i = 1; i < mine.length; i++) assert(mine[i]!.time >= mine[i - 1]!.time, "event time never goes backwards");
        if (target.clock) assert(completed.time <= target.clock.now(), "event time is the connection clock's");
      })),
};

const replaySince: ConformanceCase = {
  name: "events: subscribe({ since }) replays what a late subscriber missed, then continues live",
  requires: [["domains", "storage"]],
  run: (target) =>
    withConnection(target, async (conn) => {
      const source = eventSource(target, conn);
      const since = conn.events.lastSeq;
      const names = [await source.cycle(), await source.cycle()];
      assert(conn.events.lastSeq >= since + 4, `lastSeq grew by the four events (from ${since} to ${conn.events.lastSeq})`);
      const controller = new AbortController();
      const iterator = conn.events.subscribe({ types: [source.pattern], since, signal: controller.signal })[Symbol.asyncIterator]();
      const received: CoreEvent[] = [];
      const take = async (what: string): Promise<CoreEvent> => {
        const result = await withDeadline(iterator.next(), target.timeoutMs ?? 20_000, what);
        if (result.done) throw new ConformanceError(`The subscription ended early, waiting for ${what}`);
        if (result.value.type === "gap") throw new ConformanceError(`Got a gap event instead of ${what}: ${JSON.stringify(result.value)}`);
        return result.value as CoreEvent;
      };
      try {
        while (received.filter((e) => names.includes(source.nameOf(e) ?? "")).length < 4) {
          received.push(await take("the replayed events"));
        }
        for (const e of received) assert(e.seq > since, `replayed event ${e.type} has seq ${e.seq} > since ${since}`);
        assertIncreasingSeq(received, "replayed events");
        const mine = received.filter((e) => names.includes(source.nameOf(e) ?? ""));
        assertEquals(mine.map((e) => source.nameOf(e)), [names[0], names[0], names[1], names[1]], "replayed events, in order");
        const live = iterator.next();
        const third = await source.cycle();
        const next = await withDeadline(live, target.timeoutMs ?? 20_000, "a live event after the replay");
        assert(!next.done && source.nameOf(next.value as CoreEvent) === third, `the next event is about "${third}"`);
      } finally {
        controller.abort();
      }
      try {
        const end = await withDeadline(iterator.next(), target.timeoutMs ?? 20_000, "the subscription to end on abort");
        assert(end.done, "an aborted subscription ends");
      } catch (error) {
        if (error instanceof ConformanceError) throw error;
        assert(error === controller.signal.reason, `an aborted subscription ends, or rejects with the signal's reason (got ${describeError(error)})`);
      }
    }),
};

const unsubscribe: ConformanceCase = {
  name: "events: calling what on() returns unsubscribes; once() fires once; a throwing listener does not stop others",
  requires: [["domains", "storage"]],
  run: (target) =>
    withConnection(target, async (conn) => {
      const source = eventSource(target, conn);
      const seen: CoreEvent[] = [];
      const off = conn.events.on(source.pattern, (e) => {
        seen.push(e);
      });
      let onceCalls = 0;
      conn.events.once(source.pattern, () => {
        onceCalls++;
      });
      const offThrowing = conn.events.on(source.pattern, () => {
        throw DELIBERATE_LISTENER_ERROR;
      });
      const first = await source.cycle();
      assertEquals(seen.filter((e) => source.nameOf(e) === first).length, 2, `events about "${first}" delivered to on() past a throwing listener`);
      assertEquals(onceCalls, 1, "calls of a once() listener");
      offThrowing();
      off();
      const count = seen.length;
      await source.cycle();
      assertEquals(seen.length, count, "events delivered after unsubscribing");
      assertEquals(onceCalls, 1, "calls of a once() listener after more events");
    }),
};

/**
 * Cases for events (job ordering needs the clone capabilities; replay and unsubscribe need `domains` or `storage`).
 *
 * @example
 * ```ts
 * import { eventCases } from "virtkit/testing";
 * if (!eventCases.some((c) => c.name.includes("since"))) throw new Error("unexpected");
 * ```
 */
export const eventCases: readonly ConformanceCase[] = Object.freeze([jobEventOrder, replaySince, unsubscribe]);
