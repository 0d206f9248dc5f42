/**
 * One `iscsi` pool: the {@linkcode StoragePoolBackend} over the LUNs of one target, reached through
 * the in-process initiator. Like libvirt's `iscsi-direct` backend, it logs in for each scan and each
 * open volume (one session per open volume, logged out on close) and holds nothing in between.
 *
 * @module
 */
import type { PoolSizes, StoragePoolBackend, VolumeRecord } from "../../core/storage_backend.ts";
import { NotFoundError, StateError } from "../../core/errors.ts";
import type { SignalOptions } from "../../core/options.ts";
import type { VolumeInfo } from "../../core/volume.ts";
import type { VolumeIO } from "../../core/volume_io.ts";
import type { IscsiPoolConfig } from "../../core/storage_pool.ts";
import { chapAccountOf } from "./chap_account.ts";
import { defaultInitiatorName } from "./config.ts";
import { login, type LoginOptions } from "./initiator/login.ts";
import { type Capacity, ScsiError, ScsiLun } from "./initiator/scsi.ts";
import type { IscsiSession, SessionTimeouts } from "./initiator/session.ts";
import { lunOfVolumeName, lunUrl, lunVolumeName } from "./lun_names.ts";
import { LunVolumeIO } from "./lun_volume_io.ts";

const DRIVER = "iscsi";
/** SPC-4 peripheral device type of a block device (the only LUNs that are volumes, as in libvirt). */
const DIRECT_ACCESS = 0x00;

/** Options of {@linkcode IscsiPool}: timeouts and seams for tests and benchmarks. */
export interface IscsiPoolOptions extends SessionTimeouts {
  /** Bound on connect plus login (default 10 s). */
  readonly loginTimeoutMs?: number;
  /** Bytes per READ/WRITE command (default 256 KiB). */
  readonly pieceBytes?: number;
}

interface LunEntry {
  readonly lun: number;
  readonly capacity: Capacity;
}

/**
 * The LUNs of one target as a pool. Volumes are the direct-access LUNs REPORT LUNS lists (LUN 0 of
 * tgtd, its controller, is not one), named `unit:0:0:N`, key and path `iscsi://host:port/IQN/N`, raw,
 * fully allocated as far as the pool can tell (libvirt's rule: capacity = allocation = the LUN's size;
 * the pool's available space is 0). They cannot be created, deleted or resized here.
 *
 * @example Before `start()` there is no LUN table to answer from
 * ```ts
 * import { IscsiPool } from "./iscsi_pool.ts";
 * import { StateError } from "virtkit";
 * const pool = new IscsiPool({ name: "san", type: "iscsi", host: "127.0.0.1", target: "iqn.2026-01.com.example:disks" });
 * const error = await pool.listVolumes().then(() => undefined, (e) => e);
 * if (!(error instanceof StateError)) throw new Error("unexpected");
 * ```
 */
export class IscsiPool implements StoragePoolBackend {
  readonly #config: IscsiPoolConfig;
  readonly #options: IscsiPoolOptions;
  readonly #open = new Set<VolumeIO>();
  #luns: LunEntry[] | undefined;

  /**
   * @param config The checked definition.
   * @param options Timeouts.
   */
  constructor(config: IscsiPoolConfig, options: IscsiPoolOptions = {}) {
    this.#config = config;
    this.#options = options;
  }

  /**
   * Logs in (so a wrong address, target or secret fails here, as a `ConnectError`) and scans the LUNs.
   * An `auth` that names its secret without giving the password is an `UnsupportedError`: virtkit has no
   * secret store to find it in.
   */
  async start(options?: SignalOptions): Promise<void> {
    this.#luns = await this.#scan("start", options?.signal);
  }

  /** Forgets the scan; open volumes keep their own sessions until closed. */
  stop(options?: SignalOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    this.#luns = undefined;
    return Promise.resolve();
  }

  /** Scans the LUNs again. */
  async refresh(options?: SignalOptions): Promise<void> {
    this.#luns = await this.#scan("refresh", options?.signal);
  }

  /** Capacity and allocation are the sum of the LUN sizes; nothing is available to create. */
  async sizes(options?: SignalOptions): Promise<PoolSizes> {
    options?.signal?.throwIfAborted();
    const total = this.#entries().reduce((sum, e) => sum + e.capacity.blocks * e.capacity.blockBytes, 0);
    return { capacityBytes: total, allocationBytes: total, availableBytes: 0 };
  }

  /** The LUN volumes, in LUN order (which is name order for LUNs below 10, as libvirt lists them). */
  async listVolumes(options?: SignalOptions): Promise<VolumeRecord[]> {
    options?.signal?.throwIfAborted();
    return this.#entries().map((e) => this.#record(e.lun));
  }

  /** One LUN volume; `NotFoundError` for a name that is no LUN of the last scan. */
  async lookupVolume(name: string, options?: SignalOptions): Promise<VolumeRecord> {
    options?.signal?.throwIfAborted();
    return this.#record(this.#entry(name).lun);
  }

  /** Raw, with capacity = allocation = physical = the LUN's size. */
  async volumeInfo(name: string, options?: SignalOptions): Promise<VolumeInfo> {
    options?.signal?.throwIfAborted();
    const { capacity } = this.#entry(name);
    const bytes = capacity.blocks * capacity.blockBytes;
    return { capacityBytes: bytes, allocationBytes: bytes, physicalBytes: bytes, format: "raw" };
  }

  /**
   * Logs in a session of its own for the volume. Writing a LUN the target exports write-protected is
   * a `StateError`, found out here rather than at the first write.
   */
  async openVolume(name: string, mode: { write: boolean }, options?: SignalOptions): Promise<VolumeIO> {
    const { lun } = this.#entry(name);
    const session = await this.#login("openVolume", options?.signal);
    try {
      const scsi = new ScsiLun(session, lun);
      const capacity = await scsi.readCapacity(options?.signal);
      if (mode.write && (await scsi.writeProtected(options?.signal))) {
        throw new StateError(`Cannot write ${this.#label(name)}: the target exports the LUN write-protected`, { state: "read-only", driver: DRIVER });
      }
      const io = new LunVolumeIO({ session, lun: scsi, capacity, write: mode.write, label: this.#label(name), ...(this.#options.pieceBytes ? { pieceBytes: this.#options.pieceBytes } : {}) });
      return this.#track(io);
    } catch (error) {
      await session.logout();
      if (error instanceof ScsiError && error.senseKey === 5 && error.asc === 0x25) {
        throw new NotFoundError("volume", name, { driver: DRIVER, detail: `LUN ${lun} is gone from target ${this.#config.target}; refresh the pool`, cause: error });
      }
      throw error;
    }
  }

  /** Closes the volumes still open (their sessions log out). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#open].map((io) => io.close()));
    this.#open.clear();
  }

  #track(io: LunVolumeIO): VolumeIO {
    this.#open.add(io);
    const close = io.close.bind(io);
    io.close = async () => {
      this.#open.delete(io);
      await close();
    };
    return io;
  }

  #login(operation: string, signal?: AbortSignal): Promise<IscsiSession> {
    const c = this.#config;
    const auth = chapAccountOf(c.name, c.auth, operation);
    const options: LoginOptions = {
      ...this.#options,
      host: c.host,
      port: c.port ?? 3260,
      target: c.target,
      initiatorName: c.initiator ?? defaultInitiatorName(),
      ...(auth ? { auth: { username: auth.username, password: auth.password, ...(auth.mutual ? { mutual: auth.mutual } : {}) } } : {}),
      ...(signal ? { signal } : {}),
    };
    return login(options);
  }

  async #scan(operation: string, signal?: AbortSignal): Promise<LunEntry[]> {
    const session = await this.#login(operation, signal);
    try {
      const luns = await new ScsiLun(session, 0).reportLuns(signal);
      const entries: LunEntry[] = [];
      for (const lun of luns) {
        const scsi = new ScsiLun(session, lun);
        const inquiry = await scsi.inquiry(signal);
        if (inquiry.qualifier !== 0 || inquiry.deviceType !== DIRECT_ACCESS) continue;
        entries.push({ lun, capacity: await scsi.readCapacity(signal) });
      }
      return entries;
    } finally {
      await session.logout();
    }
  }

  #entries(): LunEntry[] {
    if (!this.#luns) throw new StateError(`Cannot use pool "${this.#config.name}": it is not started`, { state: "inactive", driver: DRIVER });
    return this.#luns;
  }

  #entry(name: string): LunEntry {
    const lun = lunOfVolumeName(name);
    const entry = lun === undefined ? undefined : this.#entries().find((e) => e.lun === lun);
    if (!entry) throw new NotFoundError("volume", name, { driver: DRIVER, detail: `pool "${this.#config.name}" has LUN volumes named unit:0:0:N` });
    return entry;
  }

  #record(lun: number): VolumeRecord {
    const url = lunUrl({ host: this.#config.host, port: this.#config.port ?? 3260 }, this.#config.target, lun);
    // The account travels with the record (not in the URL), so a qemu domain on the LUN can log in too.
    // A started pool logged in with it, so its passwords are at hand.
    const auth = chapAccountOf(this.#config.name, this.#config.auth, "lookupVolume");
    return { name: lunVolumeName(lun), key: url, path: url, ...(auth ? { auth } : {}) };
  }

  #label(name: string): string {
    return `volume "${name}" in pool "${this.#config.name}"`;
  }
}
