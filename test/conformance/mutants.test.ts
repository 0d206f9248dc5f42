/**
 * The kit's cases must fail when a driver breaks the behaviour they check. Each mutant wraps a real
 * `test:` connection and breaks one thing through the public API; the case that covers it must reject.
 * An unbroken wrapper passes every case, so a failure comes from the mutation, not from the wrapping.
 */
import { TEST_DRIVER_CAPABILITIES } from "../_support/test_driver_capabilities.ts";
import { describe, expect, it } from "vitest";
import { connect, createVirtualClock, MiB } from "../../mod.ts";
import type { Connection } from "../../core/connection.ts";
import type { Domain } from "../../core/domain.ts";
import type { EventBus } from "../../core/event_bus.ts";
import type { Job } from "../../core/job.ts";
import type { StoragePool } from "../../core/storage_pool.ts";
import type { Volume } from "../../core/volume.ts";
import { allCases, ConformanceError, type ConformanceTarget } from "./mod.ts";

type Overrides<T> = { [K in keyof T]?: (inner: T) => T[K] };

/**
 * A stand-in for `inner` with some members replaced; other methods stay bound to `inner` (private fields).
 * The proxy's own target is an empty object, because handles may be frozen and a proxy of a frozen
 * object must return its real property values.
 */
function wrap<T extends object>(inner: T, overrides: Overrides<T>): T {
  return new Proxy({} as T, {
    get(_, key) {
      const override = overrides[key as keyof T];
      if (override) return override(inner);
      const value = Reflect.get(inner, key, inner);
      return typeof value === "function" ? value.bind(inner) : value;
    },
    has: (_, key) => key in inner,
  });
}

type Mutation = (conn: Connection) => Connection;

function mutant(mutation: Mutation): ConformanceTarget {
  const clock = createVirtualClock();
  return {
    connect: async () => mutation(await connect("test:///empty", { clock })),
    domainConfig: (name) => ({ name, vcpus: 1, memoryBytes: MiB(64), disks: [] }),
    poolConfig: (name) => ({ name, type: "memory" }),
    clock,
    // Some mutants make a case wait for what never comes; fail those sooner than the default 20 s.
    timeoutMs: 5000,
    capabilities: TEST_DRIVER_CAPABILITIES,
  };
}

/** Wraps every domain handle the connection hands out. */
function mapDomains(conn: Connection, f: (domain: Domain) => Domain): Connection {
  const domains = wrap(conn.domains, {
    get: (d) => async (name, options) => f(await d.get(name, options)),
    define: (d) => async (config, options) => f(await d.define(config, options)),
    list: (d) => async (options) => (await d.list(options)).map(f),
  });
  return wrap(conn, { domains: () => domains });
}

/** Wraps every pool handle (and through `volumes`, what the pool hands out). */
function mapPools(conn: Connection, f: (pool: StoragePool) => StoragePool): Connection {
  const pools = wrap(conn.pools, {
    get: (p) => async (name, options) => f(await p.get(name, options)),
    define: (p) => async (config, options) => f(await p.define(config, options)),
    create: (p) => async (config, options) => f(await p.create(config, options)),
    list: (p) => async (options) => (await p.list(options)).map(f),
  });
  return wrap(conn, { pools: () => pools });
}

function mapVolumes(conn: Connection, f: (volume: Volume) => Volume): Connection {
  return mapPools(conn, (pool) => {
    const volumes = wrap(pool.volumes, {
      get: (v) => async (name, options) => f(await v.get(name, options)),
      create: (v) => async (options) => f(await v.create(options)),
      list: (v) => async (options) => (await v.list(options)).map(f),
    });
    return wrap(pool, { volumes: () => volumes });
  });
}

/** Wraps clone jobs, the jobs the job cases act on. */
function mapCloneJobs(conn: Connection, f: (job: Job<Volume>) => Job<Volume>): Connection {
  return mapPools(conn, (pool) => {
    const volumes = wrap(pool.volumes, { clone: (v) => async (source, options) => f(await v.clone(source, options)) });
    return wrap(pool, { volumes: () => volumes });
  });
}

function mapEvents(conn: Connection, overrides: Overrides<EventBus>): Connection {
  const events = wrap(conn.events, overrides);
  return wrap(conn, { events: () => events });
}

const swallow = (error: unknown) => {
  if (!(error instanceof Error)) throw error;
};

const mutants: Array<{ breaks: string; caseName: string; mutation: Mutation }> = [
  {
    breaks: "start() of a running domain succeeds",
    caseName: "domains: start, suspend",
    mutation: (c) => mapDomains(c, (d) => wrap(d, { start: (i) => () => i.start().catch(swallow) })),
  },
  {
    breaks: "get() of an unknown domain throws a plain Error",
    caseName: "domains: get() of an unknown name",
    mutation: (c) => wrap(c, { domains: (i) => wrap(i.domains, { get: (d) => (name) => d.get(name).catch(() => Promise.reject(new Error("gone"))) }) }),
  },
  {
    breaks: "define() of a taken name replaces the domain",
    caseName: "domains: define() of a taken name",
    mutation: (c) =>
      wrap(c, {
        domains: (i) =>
          wrap(i.domains, {
            define: (d) => async (config) => {
              if ((await d.list()).some((x) => x.name === config.name)) await (await d.get(config.name)).undefine();
              return d.define(config);
            },
          }),
      }),
  },
  {
    breaks: "undefine() of a running domain destroys it first",
    caseName: "domains: undefine() of a running domain",
    mutation: (c) => mapDomains(c, (d) => wrap(d, { undefine: (i) => async () => { await i.destroy().catch(swallow); await i.undefine(); } })),
  },
  {
    breaks: "domain:stopped is never emitted",
    caseName: "domains: the lifecycle emits",
    mutation: (c) => mapEvents(c, { on: (b) => (pattern, listener) => b.on(pattern, (e) => e.type !== "domain:stopped" && listener(e)) }),
  },
  {
    breaks: "pool start() of an active pool succeeds",
    caseName: "pools: define, build, start",
    mutation: (c) => mapPools(c, (p) => wrap(p, { start: (i) => () => i.start().catch(swallow) })),
  },
  {
    breaks: "resize() shrinks without { shrink: true }",
    caseName: "volumes: resize() grows",
    mutation: (c) => mapVolumes(c, (v) => wrap(v, { resize: (i) => (bytes) => i.resize(bytes, { shrink: true }) })),
  },
  {
    breaks: "download() ignores the offset",
    caseName: "volumes: bytes uploaded at an offset",
    mutation: (c) => mapVolumes(c, (v) => wrap(v, { download: (i) => (range) => i.download({ length: range?.length }) })),
  },
  {
    breaks: "extents() drop the first run",
    caseName: "volumes: extents() cover",
    mutation: (c) =>
      mapVolumes(c, (v) =>
        wrap(v, {
          extents: (i) => (range) => ({
            async *[Symbol.asyncIterator]() {
              let index = 0;
              for await (const e of i.extents(range)) if (index++ > 0) yield e;
            },
          }),
        })),
  },
  {
    breaks: "wait() of a clone resolves to the source volume",
    caseName: 'jobs: a clone is listed as "volume-clone"',
    mutation: (c) =>
      mapPools(c, (p) =>
        wrap(p, {
          volumes: (i) =>
            wrap(i.volumes, { clone: (v) => async (source, o) => wrap(await v.clone(source, o), { wait: (j) => () => j.wait().then(() => source) }) }),
        })),
  },
  {
    breaks: "dismiss() is a no-op",
    caseName: "jobs: finished jobs stay listed",
    mutation: (c) => mapCloneJobs(c, (j) => wrap(j, { dismiss: () => () => Promise.resolve() })),
  },
  {
    breaks: "pause() is a no-op",
    caseName: "jobs: verbs in the wrong state",
    mutation: (c) => mapCloneJobs(c, (j) => wrap(j, { pause: () => () => Promise.resolve() })),
  },
  {
    breaks: "setSpeed(-1) is accepted",
    caseName: "jobs: setSpeed() rejects",
    mutation: (c) => mapCloneJobs(c, (j) => wrap(j, { setSpeed: (i) => (bytes) => i.setSpeed(bytes).catch(swallow) })),
  },
  {
    breaks: "abort() is ignored",
    caseName: "jobs: abort() of a capped clone",
    mutation: (c) => mapCloneJobs(c, (j) => wrap(j, { abort: (i) => () => i.setSpeed(0) })),
  },
  {
    breaks: "a failed job loses its error text",
    caseName: "jobs: a failed clone",
    mutation: (c) => wrap(c, { testing: (i) => wrap(i.testing!, { failJob: (t) => (id) => t.failJob(id, new Error("something")) }) }),
  },
  {
    breaks: "a second upload does not conflict",
    caseName: "jobs: a second job writing",
    mutation: (c) =>
      mapVolumes(c, (v) => {
        let first: ReturnType<Volume["upload"]> | undefined;
        return wrap(v, {
          upload: (i) => (o) => {
            const started = i.upload(o);
            first ??= started;
            return started.catch(() => first!);
          },
        });
      }),
  },
  {
    breaks: "the disks keep their backing chain after a pull",
    caseName: "block jobs: blockPull() on a shut-off domain",
    mutation: (c) =>
      mapDomains(c, (d) =>
        wrap(d, { disks: (i) => async () => (await i.disks()).map((x) => ({ ...x, backingChain: [{ path: "/base", format: "raw" }] })) })),
  },
  {
    breaks: "domains.list() wraps the abort reason",
    caseName: "domains: a call with an aborted signal",
    mutation: (c) => wrap(c, { domains: (i) => wrap(i.domains, { list: (d) => (o) => d.list(o).catch((e) => Promise.reject(new Error("wrapped", { cause: e }))) }) }),
  },
  {
    breaks: "volumes.create() ignores the signal",
    caseName: "volumes: a call with an aborted signal",
    mutation: (c) => mapPools(c, (p) => wrap(p, { volumes: (i) => wrap(i.volumes, { create: (v) => ({ signal: _, ...o }) => v.create(o) }) })),
  },
  {
    breaks: "wait() ignores its signal",
    caseName: "jobs: aborting wait()'s signal",
    mutation: (c) => mapCloneJobs(c, (j) => wrap(j, { wait: (i) => () => i.wait() })),
  },
  {
    breaks: "job:created is never emitted",
    caseName: "events: one job's events come in order",
    mutation: (c) => mapEvents(c, { on: (b) => (pattern, listener) => b.on(pattern, (e) => e.type !== "job:created" && listener(e)) }),
  },
  {
    breaks: "subscribe() ignores since",
    caseName: "events: subscribe({ since })",
    mutation: (c) => mapEvents(c, { subscribe: (b) => (o) => b.subscribe({ ...o, since: undefined }) }),
  },
  {
    breaks: "the function on() returns does not unsubscribe",
    caseName: "events: calling what on() returns",
    mutation: (c) => mapEvents(c, { on: (b) => (pattern, listener) => (b.on(pattern, listener), () => {}) }),
  },
];

function caseNamed(target: ConformanceTarget, prefix: string) {
  const matches = allCases(target).filter((p) => p.name.startsWith(prefix));
  if (matches.length !== 1 || !matches[0]!.run) throw new Error(`expected one runnable case named "${prefix}..."`);
  return matches[0]!.run;
}

describe("conformance cases against broken drivers", () => {
  it("pass against an unbroken wrapper of the test driver", async () => {
    const target = mutant((c) => mapVolumes(mapDomains(mapCloneJobs(mapEvents(c, {}), (j) => wrap(j, {})), (d) => wrap(d, {})), (v) => wrap(v, {})));
    for (const planned of allCases(target)) await planned.run!();
  });

  for (const { breaks, caseName, mutation } of mutants) {
    it(`"${caseName}..." fails when ${breaks}`, async () => {
      const failure = await caseNamed(mutant(mutation), caseName)().then(() => undefined, (error: unknown) => error);
      expect(failure).toBeInstanceOf(ConformanceError);
    });
  }
});
