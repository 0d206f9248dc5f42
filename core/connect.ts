/**
 * Opening a connection: parse the URI, find the driver, build the connection's clock, event bus, job
 * manager and pool manager, open the driver, and hand back one {@linkcode Connection}.
 *
 * @module
 */
import { createRealClock } from "./clock.ts";
import type { Connection, ConnectOptions } from "./connection.ts";
import { checkDeclaredOperations } from "./capabilities.ts";
import type { DriverContext, DriverJobs, HypervisorConnection, HypervisorDriverDefinition } from "./driver.ts";
import { ConnectError, NotFoundError, StateError } from "./errors.ts";
import { createEventBus } from "./event_bus.ts";
import { createDiskJobs } from "./domains/disk_jobs.ts";
import { createDomainCollection } from "./domains/domain_collection.ts";
import type { JobList, JobListFilter } from "./job.ts";
import type { SignalOptions } from "./options.ts";
import { createJobManager } from "./jobs/job_manager.ts";
import { type ConnectCleanup, runCleanups, runConnectListeners } from "./plugin.ts";
import { connectListenersOf, type Registry } from "./registry.ts";
import { createDeferredPoolConfigStore } from "./storage/pool_config_store.ts";
import { createPoolManager } from "./storage/pool_manager.ts";
import { assertBandwidth } from "./units.ts";
import { parseUri } from "./uri.ts";
import { assertObject } from "./validate.ts";

type Closer = () => Promise<void>;

/**
 * Opens a connection with a driver of `registry`. `connect()` and `registry.connect()` call this.
 *
 * The state directory is `options.stateDir`, else the URI's `stateDir` parameter, else the driver's own
 * default. If anything fails after the driver was found, what was built so far is closed again.
 *
 * @param uri Such as `"test:///default"` or `"qemu:///session"`.
 * @param options Clock, state directory, progress interval, event buffer size, budget and signal
 *   (`options.registry` is not read here: `registry` is).
 * @param registry Where to find the driver by URI scheme.
 * @returns The open connection.
 * @throws {TypeError} For a malformed URI or options.
 * @throws {RangeError} For out-of-range numeric options.
 * @throws {NotFoundError} When no driver serves the URI's scheme (the message lists those that do).
 * @throws {ConnectError} When the driver cannot be loaded or opened, with the failure as `cause`.
 * @example
 * ```ts
 * import { openConnection } from "./connect.ts";
 * import { createRegistry } from "virtkit";
 * let code = "";
 * try { await openConnection("xen:///system", {}, createRegistry()); } catch (error) { code = (error as { code: string }).code; }
 * if (code !== "not-found") throw new Error("unexpected");
 * ```
 */
export async function openConnection(
  uri: string,
  options: ConnectOptions | undefined,
  registry: Registry,
): Promise<Connection> {
  const opts = checkOptions(options);
  const signal = opts.signal;
  signal?.throwIfAborted();
  const parsed = parseUri(uri);
  let def: HypervisorDriverDefinition;
  try {
    def = await registry.hypervisorFor(driverScheme(parsed));
  } catch (error) {
    if (error instanceof NotFoundError || error instanceof TypeError) throw error;
    throw new ConnectError(`Cannot connect to "${uri}": ${messageOf(error)}`, { cause: error });
  }
  const closers: Closer[] = [];
  try {
    signal?.throwIfAborted();
    const clock = opts.clock ?? createRealClock();
    const stateDir = opts.stateDir ?? parsed.params.get("stateDir");
    const bus = createEventBus({ clock, bufferSize: opts.eventBufferSize });
    const jobs = createJobManager({
      bus,
      clock,
      progressIntervalMs: opts.progressIntervalMs,
      budgetBytesPerSecond: opts.budgetBytesPerSecond,
    });
    closers.push(() => jobs.close());
    // The driver says where pool definitions persist, but it opens after storage exists (its context
    // needs storage access); the manager only loads definitions at its first operation, after open.
    const deferredStore = createDeferredPoolConfigStore();
    const storage = createPoolManager({ registry, bus, clock, jobs, uri: parsed, stateDir, store: deferredStore.store });
    closers.push(() => storage.close());
    // If the driver never opens, nothing may wait on the store forever.
    closers.push(async () => deferredStore.resolve(undefined));
    const ctx: DriverContext = Object.freeze({
      uri: parsed,
      bus,
      clock,
      jobs,
      storage: storage.access,
      ...(stateDir === undefined ? {} : { stateDir }),
    });
    const driverConn = await raceSignal(def.open(parsed, ctx), signal, (late) => late.close());
    closers.push(() => driverConn.close());
    checkDeclaredOperations(def, driverConn);
    deferredStore.resolve(driverConn.poolConfigStore);
    signal?.throwIfAborted();
    if (typeof driverConn.initialPools === "function") await storage.addInitialPools(await driverConn.initialPools());
    signal?.throwIfAborted();
    const listenerCleanups: ConnectCleanup[] = [];
    // Plugin cleanups run first on close, while the jobs, storage and driver are still there.
    closers.unshift(async () => {
      const error = await runCleanups(listenerCleanups);
      if (error !== undefined) throw error;
    });
    let closing: Promise<void> | undefined;
    const close = () => (closing ??= closeAll(closers));
    const state = { closed: false };
    const conn: Connection = Object.freeze({
      uri,
      driver: def.name,
      domains: createDomainCollection({
        driver: driverConn,
        driverName: def.name,
        jobs,
        diskJobs: createDiskJobs({ driver: driverConn, driverName: def.name, jobs, storage: storage.access, bus }),
        assertOpen(what: string, domain?: string) {
          if (!state.closed) return;
          const action = domain === undefined ? what : `${what} domain "${domain}"`;
          throw new StateError(`Cannot ${action}: connection "${uri}" is closed`, { state: "closed" });
        },
      }),
      // A driver whose storage lives behind it (remote) serves pools and volumes itself.
      pools: driverConn.storage?.pools ?? storage.pools,
      volumes: driverConn.storage?.volumes ?? storage.volumes,
      jobs: publicJobList(jobs, driverConn.jobs),
      events: bus,
      clock,
      ...testingOf(driverConn),
      close() {
        state.closed = true;
        return close();
      },
      [Symbol.asyncDispose]() {
        return conn.close();
      },
    });
    listenerCleanups.push(...await runConnectListeners(connectListenersOf(registry), conn));
    return conn;
  } catch (error) {
    await closeAll(closers).catch(() => {}); // the opening failure is the one worth reporting
    if (signal?.aborted && error === signal.reason) throw error;
    if (error instanceof ConnectError) throw error;
    throw new ConnectError(`Cannot connect to "${uri}": ${messageOf(error)}`, { driver: def.name, cause: error });
  }
}

/**
 * The scheme whose driver serves a URI: a transport suffix (`qemu+unix`, `test+tcp`, `qemu+tls`) means
 * libvirt's remote protocol to a daemon, so the `remote` driver, as in libvirt; `qemu:///session` stays
 * with the driver of `qemu`.
 */
function driverScheme(uri: { scheme: string; transport?: string }): string {
  return uri.transport === undefined ? uri.scheme : "remote";
}

/**
 * The user's view of the job manager: listing and look-up, not `create`/`startLocal`. A driver whose
 * peer owns jobs (remote, on virtkitd) brings its mirror up to date first.
 */
function publicJobList(jobs: JobList, peer: DriverJobs | undefined): JobList {
  if (!peer) {
    return Object.freeze({
      list: (filter?: JobListFilter) => jobs.list(filter),
      get: (id: string, options?: SignalOptions) => jobs.get(id, options),
    });
  }
  return Object.freeze({
    async list(filter?: JobListFilter) {
      await peer.refresh(filter?.signal ? { signal: filter.signal } : {});
      return await jobs.list(filter);
    },
    async get(id: string, options?: SignalOptions) {
      // Known here: no round trip (its events keep it current).
      const known = await jobs.get(id, options).catch(() => undefined);
      if (known) return known;
      await peer.refresh({ ...options, id });
      return await jobs.get(id, options);
    },
  });
}

function testingOf(driverConn: HypervisorConnection): Pick<Connection, "testing"> {
  const testing = driverConn.testing;
  return testing === undefined ? {} : { testing };
}

/**
 * Runs every closer in order (plugin cleanups, then jobs, which still use storage and the driver, then
 * storage, then the driver); all run even if one throws, and the first error is rethrown.
 */
async function closeAll(closers: readonly Closer[]): Promise<void> {
  let first: { error: unknown } | undefined;
  for (const closer of [...closers]) {
    try {
      await closer();
    } catch (error) {
      first ??= { error };
    }
  }
  if (first) throw first.error;
}

/**
 * Resolves like `promise`, or rejects with the signal's reason as soon as it aborts; a value that
 * arrives after that is handed to `onLate` (to close it) instead of being lost.
 */
function raceSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined, onLate: (value: T) => unknown): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      reject(signal.reason);
      promise.then((value) => Promise.resolve(onLate(value)).catch(() => {}), () => {});
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

function checkOptions(options: ConnectOptions | undefined): ConnectOptions {
  if (options === undefined) return {};
  const o = assertObject(options, "connect options") as ConnectOptions;
  const clock = o.clock as { now?: unknown; sleep?: unknown } | undefined;
  if (clock !== undefined && (typeof clock.now !== "function" || typeof clock.sleep !== "function")) {
    throw new TypeError("Invalid connect option clock: expected an object with now() and sleep()");
  }
  if (o.stateDir !== undefined && (typeof o.stateDir !== "string" || o.stateDir === "" || o.stateDir.includes("\0"))) {
    throw new TypeError("Invalid connect option stateDir: expected a non-empty path without NUL");
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new TypeError("Invalid connect option signal: expected an AbortSignal");
  }
  checkNumber(o.progressIntervalMs, "progressIntervalMs", 0);
  checkNumber(o.eventBufferSize, "eventBufferSize", 1);
  assertBandwidth(o.budgetBytesPerSecond, "budgetBytesPerSecond");
  return o;
}

function checkNumber(value: unknown, what: string, min: number): void {
  if (value === undefined) return;
  if (typeof value !== "number") throw new TypeError(`Invalid connect option ${what}: expected a number, got ${typeof value}`);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`Invalid connect option ${what}: ${value} is not a whole number from ${min}`);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
