/**
 * The public storage pool contract.
 *
 * @module
 */
import type { SignalOptions } from "./options.ts";
import type { VolumeCollection } from "./volume.ts";

/** A directory of image files. */
export interface DirPoolConfig {
  /** Pool name. */
  name: string;
  /** Pool type. */
  type: "dir";
  /** Absolute path of the directory. */
  path: string;
}

/** An LVM volume group. */
export interface LogicalPoolConfig {
  /** Pool name. */
  name: string;
  /** Pool type. */
  type: "logical";
  /** Volume group name. */
  volumeGroup: string;
  /** Physical devices `build()` puts in the group. */
  devices?: string[];
}

/** The LUNs of an iSCSI target, reached through virtkit's userspace initiator. */
export interface IscsiPoolConfig {
  /** Pool name. */
  name: string;
  /** Pool type. */
  type: "iscsi";
  /** Portal host. */
  host: string;
  /** Portal port (default 3260). */
  port?: number;
  /** Target IQN. */
  target: string;
  /** Our initiator IQN (default: one per host, `iqn.2026-01.org.virtkit:HOSTNAME`). */
  initiator?: string;
  /** CHAP credentials (one-way, MD5), when the target requires them. */
  auth?: IscsiChapAuth;
}

/** CHAP credentials of an `iscsi` pool: the initiator proves itself to the target. */
export interface IscsiChapAuth {
  /** Always `"chap"`. */
  type: "chap";
  /** The account name on the target (`CHAP_N`). */
  username: string;
  /** The shared secret. */
  password: string;
}

/** The `test` driver's in-memory pool. */
export interface MemoryPoolConfig {
  /** Pool name. */
  name: string;
  /** Pool type. */
  type: "memory";
  /** Capacity in bytes (default 100 GiB, like libvirt's test driver). */
  capacityBytes?: number;
}

/** A pool backend type a plugin defines: any other `type` with its own fields. */
export interface OtherPoolConfig {
  /** Pool name. */
  name: string;
  /** Backend name. */
  type: string & {};
  /** Backend-specific settings. */
  [setting: string]: unknown;
}

/** What a pool is. */
export type PoolConfig = DirPoolConfig | LogicalPoolConfig | IscsiPoolConfig | MemoryPoolConfig | OtherPoolConfig;

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
}
