/**
 * The public storage pool contract.
 *
 * @module
 */
import type { DefineXmlOptions } from "./domain.ts";
import type { SignalOptions } from "./options.ts";
import type { VolumeCollection } from "./volume.ts";

export type {
  BasePoolConfig,
  DirPoolConfig,
  IscsiChapAuth,
  IscsiPoolAuth,
  IscsiSecretRef,
  IscsiPoolConfig,
  LogicalPoolConfig,
  MemoryPoolConfig,
  OtherPoolConfig,
  PoolConfig,
} from "./config/pool_config.ts";
import type { PoolConfig } from "./config/pool_config.ts";

/** Pool states. */
export type PoolState = "active" | "inactive";

/** A snapshot of a pool. */
export interface PoolInfo {
  /** Whether the pool is started. */
  readonly state: PoolState;
  /** Total bytes. */
  readonly capacityBytes: number;
  /** Bytes used. */
  readonly allocationBytes: number;
  /** Bytes free. */
  readonly availableBytes: number;
  /** Whether it starts when the host has booted, even if it was inactive before (libvirt's autostart). */
  readonly autostart: boolean;
}

/** A storage pool. */
export interface StoragePool {
  /** Pool name. */
  readonly name: string;
  /** Backend type (`"dir"`, `"logical"`, `"iscsi"`, `"memory"`, ...). */
  readonly type: string;
  /** State and sizes. */
  info(options?: SignalOptions): Promise<PoolInfo>;
  /** Its definition. */
  config(options?: SignalOptions): Promise<PoolConfig>;
  /** Its definition as libvirt pool XML (`dir`, `logical`, `iscsi`; others: `UnsupportedError`). */
  xml(options?: SignalOptions): Promise<string>;
  /** Prepares the underlying storage (creates the directory, the volume group, ...). */
  build(options?: SignalOptions): Promise<void>;
  /** Activates the pool; `StateError` if active. */
  start(options?: SignalOptions): Promise<void>;
  /** Deactivates the pool; `StateError` if inactive, `ConflictError` while jobs use it. */
  stop(options?: SignalOptions): Promise<void>;
  /** Re-reads the volumes and sizes. */
  refresh(options?: SignalOptions): Promise<void>;
  /** Destroys the underlying storage of an inactive pool (a `dir` pool must be empty). */
  delete(options?: SignalOptions): Promise<void>;
  /** Forgets the definition of an inactive pool. */
  undefine(options?: SignalOptions): Promise<void>;
  /**
   * Sets libvirt's autostart flag: the first connection on the state directory after a host boot starts
   * the pool. Without a boot each connection finds every pool as the last one left it (active again, or
   * stopped), as libvirtd keeps its pools across a daemon restart.
   * `StateError` for a pool a driver brought (transient); `TypeError` for a non-boolean.
   */
  setAutostart(autostart: boolean, options?: SignalOptions): Promise<void>;
  /** Its volumes (the pool must be active). */
  readonly volumes: VolumeCollection;
}

/** The pools of a connection. */
export interface PoolCollection {
  /** Every defined pool. */
  list(options?: SignalOptions): Promise<StoragePool[]>;
  /** One pool by name; `NotFoundError` when there is none. */
  get(name: string, options?: SignalOptions): Promise<StoragePool>;
  /** Defines an inactive pool; `ConflictError` when the name is taken. */
  define(config: PoolConfig, options?: SignalOptions): Promise<StoragePool>;
  /** Defines, builds and starts a pool. */
  create(config: PoolConfig, options?: SignalOptions): Promise<StoragePool>;
  /**
   * Defines an inactive pool from libvirt pool XML (`virsh pool-dumpxml`), checked like `define()`; a
   * type virtkit has no backend for is an `UnsupportedError`. Unmodeled content goes to `onWarning`.
   */
  defineXml(xml: string, options?: DefineXmlOptions): Promise<StoragePool>;
}
