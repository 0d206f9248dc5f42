/**
 * The public connection contract: what `connect()` returns.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import type { DomainCollection } from "./domain.ts";
import type { TestingControls } from "./driver.ts";
import type { EventBus } from "./event_bus.ts";
import type { JobList } from "./job.ts";
import type { PoolCollection } from "./storage_pool.ts";
import type { VolumeLookup } from "./volume.ts";

/** Options of `connect()`. */
export interface ConnectOptions {
  /** The registry to find the driver in (default: the built-ins). */
  registry?: import("./registry.ts").Registry;
  /** The clock jobs run on (default: the real clock); pass a virtual clock in tests. */
  clock?: Clock;
  /** Where the connection keeps state on disk (driver-specific default). */
  stateDir?: string;
  /** Minimum time between two `job:progress` events of one job (default 100 ms). */
  progressIntervalMs?: number;
  /** How many recent events the bus keeps for `subscribe({ since })` (default 1024). */
  eventBufferSize?: number;
  /** Host-wide bandwidth budget shared by all in-process jobs, bytes per second (default unlimited). */
  budgetBytesPerSecond?: number;
  /** Aborts opening. */
  signal?: AbortSignal;
}

/** An open connection to a hypervisor (and the storage it can reach). */
export interface Connection extends AsyncDisposable {
  /** The URI it was opened with. */
  readonly uri: string;
  /** The hypervisor driver's name (`"test"`, `"qemu"`). */
  readonly driver: string;
  /** Domains. */
  readonly domains: DomainCollection;
  /** Storage pools (every storage backend serves every connection). */
  readonly pools: PoolCollection;
  /** Volume look-ups across pools. */
  readonly volumes: VolumeLookup;
  /** Every job of the connection. */
  readonly jobs: JobList;
  /** The connection's events. */
  readonly events: EventBus;
  /** The clock jobs run on. */
  readonly clock: Clock;
  /** Fault injection and fixtures; present only on `test:` connections. */
  readonly testing?: TestingControls;
  /** Aborts unfinished in-process jobs, releases the driver. Idempotent. */
  close(): Promise<void>;
}
