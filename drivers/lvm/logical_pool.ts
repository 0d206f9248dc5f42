/**
 * One `logical` pool: an LVM2 volume group whose logical volumes are the pool's volumes, as libvirt's
 * logical backend keeps them (key = LV UUID, path = `/dev/VG/LV`, raw only, thin pool LVs not listed).
 *
 * @module
 */
import type { PoolSizes, StoragePoolBackend, VolumeCreateSpec, VolumeRecord } from "../../core/storage_backend.ts";
import { CommandError, ConflictError, NotFoundError, UnsupportedError } from "../../core/errors.ts";
import type { SignalOptions } from "../../core/options.ts";
import type { LogicalPoolConfig } from "../../core/storage_pool.ts";
import type { VolumeInfo } from "../../core/volume.ts";
import type { VolumeIO } from "../../core/volume_io.ts";
import type { CommandRunner } from "../command_runner.ts";
import { assertLvName } from "./config.ts";
import { LvmTools } from "./lvm_tools.ts";
import type { LvReport, VgReport } from "./reports.ts";

const DRIVER = "logical";

/** Opens an LV's device for byte I/O (used only where device-mapper works). */
export type LvDeviceOpener = (path: string, capacityBytes: number, mode: { write: boolean }, label: string) => Promise<VolumeIO>;

/** What a {@linkcode LogicalPool} needs besides its definition. */
export interface LogicalPoolOptions {
  /** Runs the LVM2 tools. */
  readonly runner: CommandRunner;
  /** Opens an active LV's device. */
  readonly openDevice: LvDeviceOpener;
}

/** The volume group's state as the last refresh (or change) read it. */
interface Snapshot {
  readonly vg: VgReport;
  /** The pool's volumes by name: every LV but thin pools. */
  readonly volumes: ReadonlyMap<string, LvReport>;
}

const signalOf = (options?: SignalOptions) => (options?.signal ? { signal: options.signal } : undefined);

/**
 * A `logical` pool backend. `build` makes the devices PVs and the VG (removing the PVs it labelled if
 * `vgcreate` fails); `start` needs the VG and activates it where device-mapper works; `delete` is
 * `vgremove -f` then `pvremove` of the group's PVs. Tool failures are `CommandError`s (argv, exit code,
 * stderr); a taken volume name is a `ConflictError` before any tool runs.
 *
 * @example
 * ```ts
 * import { LogicalPool } from "./logical_pool.ts";
 * const pool = new LogicalPool({ name: "vg", type: "logical", volumeGroup: "vg0" }, {
 *   runner: { run: async () => { throw new Error("no tools in this example"); } },
 *   openDevice: async () => { throw new Error("no devices in this example"); },
 * });
 * if (typeof pool.refresh !== "function") throw new Error("unexpected");
 * ```
 */
export class LogicalPool implements StoragePoolBackend {
  readonly #config: LogicalPoolConfig;
  readonly #tools: LvmTools;
  readonly #openDevice: LvDeviceOpener;
  #snapshot: Snapshot | undefined;

  /**
   * @param config The validated definition.
   * @param options The tool runner and the device opener.
   */
  constructor(config: LogicalPoolConfig, options: LogicalPoolOptions) {
    this.#config = config;
    this.#tools = new LvmTools(options.runner, config.volumeGroup);
    this.#openDevice = options.openDevice;
  }

  /** `pvcreate` each device, then `vgcreate`; on failure the PV labels it wrote are removed again. */
  async build(options?: SignalOptions): Promise<void> {
    const devices = this.#config.devices ?? [];
    if (devices.length === 0) {
      throw new TypeError(`Cannot build pool "${this.#config.name}": its definition lists no devices for volume group "${this.#config.volumeGroup}"`);
    }
    const labelled: string[] = [];
    try {
      for (const device of devices) {
        await this.#tools.pvcreate(device, signalOf(options));
        labelled.push(device);
      }
      await this.#tools.vgcreate(devices, signalOf(options));
    } catch (error) {
      for (const device of labelled) await this.#tools.pvremove(device).catch(() => {});
      throw error;
    }
  }

  /** Needs the volume group; activates its LVs where device-mapper works (libvirt: `vgchange -aay`). */
  async start(options?: SignalOptions): Promise<void> {
    await this.#tools.vgs(signalOf(options));
    await this.#tools.vgchange(true, signalOf(options));
  }

  /** Deactivates the LVs where device-mapper works. */
  async stop(options?: SignalOptions): Promise<void> {
    await this.#tools.vgchange(false, signalOf(options));
    this.#snapshot = undefined;
  }

  /** Removes the volume group with its LVs, then the PV labels of its devices. */
  async delete(options?: SignalOptions): Promise<void> {
    const pvs = (await this.#tools.pvs(signalOf(options))).filter((pv) => pv.vgName === this.#config.volumeGroup).map((pv) => pv.name);
    await this.#tools.vgremove(signalOf(options));
    for (const device of pvs) await this.#tools.pvremove(device, signalOf(options));
  }

  /** Re-reads the group and its LVs (`vgs`, `lvs`). */
  async refresh(options?: SignalOptions): Promise<void> {
    const vg = await this.#tools.vgs(signalOf(options));
    // Thin pools are LVs that hold other LVs, not volumes (libvirt skips them too).
    const lvs = (await this.#tools.lvs(signalOf(options))).filter((lv) => lv.segtype !== "thin-pool" && !lv.attr.startsWith("t"));
    this.#snapshot = { vg, volumes: new Map(lvs.map((lv) => [lv.name, lv])) };
  }

  async #current(options?: SignalOptions): Promise<Snapshot> {
    if (!this.#snapshot) await this.refresh(options);
    return this.#snapshot!;
  }

  /** The group's size and free space (allocation = size - free, as libvirt reports it). */
  async sizes(options?: SignalOptions): Promise<PoolSizes> {
    const { vg } = await this.#current(options);
    return { capacityBytes: vg.sizeBytes, allocationBytes: vg.sizeBytes - vg.freeBytes, availableBytes: vg.freeBytes };
  }

  /** The LVs, sorted by name. */
  async listVolumes(options?: SignalOptions): Promise<VolumeRecord[]> {
    const { volumes } = await this.#current(options);
    return [...volumes.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map(record);
  }

  async #lv(name: string, options?: SignalOptions): Promise<LvReport> {
    const lv = (await this.#current(options)).volumes.get(name);
    if (!lv) throw new NotFoundError("volume", name, { driver: DRIVER, detail: `no logical volume of that name in volume group "${this.#config.volumeGroup}"` });
    return lv;
  }

  /** One LV. */
  async lookupVolume(name: string, options?: SignalOptions): Promise<VolumeRecord> {
    return record(await this.#lv(name, options));
  }

  /** An LV's sizes: linear LVs are fully allocated; a thin one as much as LVM reports in use. */
  async volumeInfo(name: string, options?: SignalOptions): Promise<VolumeInfo> {
    const lv = await this.#lv(name, options);
    const thin = lv.poolLv !== "";
    const allocationBytes = thin ? Math.round((lv.sizeBytes * (lv.dataPercent ?? 0)) / 100) : lv.sizeBytes;
    return { capacityBytes: lv.sizeBytes, allocationBytes, physicalBytes: lv.sizeBytes, format: "raw" };
  }

  /** `lvcreate`: linear, or thin in the definition's `thinPool`. LVM rounds the size up to whole extents. */
  async createVolume(spec: VolumeCreateSpec, options?: SignalOptions): Promise<VolumeRecord> {
    if (spec.format !== "raw" || spec.backing !== undefined) {
      throw new UnsupportedError("create volume", { driver: DRIVER, detail: "a logical volume is raw, without a backing image" });
    }
    assertLvName(spec.name);
    const { volumes } = await this.#current(options);
    const taken = () => new ConflictError(`Cannot create volume "${spec.name}": a logical volume of that name exists in volume group "${this.#config.volumeGroup}"`, { driver: DRIVER });
    if (volumes.has(spec.name) || spec.name === this.#config.thinPool) throw taken();
    if (this.#config.thinPool !== undefined) await this.#thinNeedsDeviceMapper(`create thin volume "${spec.name}"`, options);
    try {
      await this.#tools.lvcreate(spec.name, spec.capacityBytes, this.#config.thinPool, signalOf(options));
    } catch (error) {
      if (error instanceof CommandError && /already exists/.test(error.stderr)) throw Object.assign(taken(), { cause: error });
      throw error;
    } finally {
      await this.refresh(options).catch(() => {});
    }
    return this.lookupVolume(spec.name, options);
  }

  /** `lvremove -f`. */
  async deleteVolume(name: string, options?: SignalOptions): Promise<void> {
    const lv = await this.#lv(name, options);
    if (lv.poolLv !== "") await this.#thinNeedsDeviceMapper(`delete thin volume "${name}"`, options);
    try {
      await this.#tools.lvremove(name, signalOf(options));
    } finally {
      await this.refresh(options).catch(() => {});
    }
  }

  /** `lvresize` to `capacityBytes` (core has refused a shrink not asked for). */
  async resizeVolume(name: string, capacityBytes: number, options?: SignalOptions): Promise<void> {
    await this.#lv(name, options);
    try {
      await this.#tools.lvresize(name, capacityBytes, signalOf(options));
    } finally {
      await this.refresh(options).catch(() => {});
    }
  }

  /**
   * Thin volumes are made and removed by messages LVM2 sends the thin pool's kernel target, so without
   * device-mapper they cannot change (tried on the real tools: `lvcreate --thin` refuses with "Can't create
   * thin without using device-mapper kernel driver", and `lvremove` drops the LV from the metadata, then
   * fails with "Failed to update pool", leaving a half-done removal). Refused before any tool runs.
   */
  async #thinNeedsDeviceMapper(action: string, options?: SignalOptions): Promise<void> {
    if (await this.#tools.deviceMapper(signalOf(options))) return;
    throw new UnsupportedError(action, {
      driver: DRIVER,
      detail: `this host's kernel has no working device-mapper (/dev/mapper/control), and LVM2 creates and removes thin volumes through the thin pool's kernel target; linear volumes work metadata-only, thin ones only where device-mapper does`,
    });
  }

  /** The LV's device, where device-mapper works; `UnsupportedError` saying why elsewhere. */
  async openVolume(name: string, mode: { write: boolean }, options?: SignalOptions): Promise<VolumeIO> {
    const lv = await this.#lv(name, options);
    if (!(await this.#tools.deviceMapper(signalOf(options)))) {
      throw new UnsupportedError("open volume", {
        driver: DRIVER,
        detail: `this host's kernel has no working device-mapper (/dev/mapper/control), so logical volume "${lv.path}" exists as LVM metadata only, without a device to read or write`,
      });
    }
    return await this.#openDevice(lv.path, lv.sizeBytes, mode, `volume "${name}" in pool "${this.#config.name}"`);
  }

  /** Forgets the cached reports. */
  close(): Promise<void> {
    this.#snapshot = undefined;
    return Promise.resolve();
  }
}

function record(lv: LvReport): VolumeRecord {
  return { name: lv.name, key: lv.uuid, path: lv.path };
}
