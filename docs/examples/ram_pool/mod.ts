/**
 * A storage backend written the way a third party writes one: only `virtkit`'s public API. A `ram` pool
 * keeps its volumes in memory (sparse: unwritten ranges cost nothing), raw or qcow2 through virtkit's
 * image engine, and lives as long as the process. `openVolume` is all it takes for clone, upload,
 * download, wipe, allocate and pull: the copy loop does the rest.
 */
import {
  API_VERSION,
  ConflictError,
  createMemoryFile,
  createQcow2,
  definePlugin,
  defineStorageBackend,
  NotFoundError,
  openImage,
  type PositionalFile,
  StateError,
  type StoragePoolBackend,
  UnsupportedError,
  type VolumeRecord,
} from "virtkit";

/** A `ram` pool: `{ name, type: "ram", capacityBytes }`. An interface, as most people write configs. */
export interface RamPoolConfig {
  name: string;
  type: "ram";
  /** How many bytes of volumes the pool may hold. */
  capacityBytes: number;
}

interface RamVolume {
  file: PositionalFile & { storedBytes(): number };
  format: "raw" | "qcow2";
  capacityBytes: number;
}

/** Volumes by pool name: they outlive the backend object, which is opened again on every start. */
const pools = new Map<string, Map<string, RamVolume>>();

/** A view of a volume's file that the image engine may close without losing the volume. */
function borrowed(file: PositionalFile): PositionalFile {
  return { ...file, read: file.read, write: file.write, size: file.size, truncate: file.truncate, flush: file.flush, close: async () => {} };
}

function openRamPool(config: RamPoolConfig): StoragePoolBackend {
  const volumes = () => pools.get(config.name) ?? new Map<string, RamVolume>();
  const find = (name: string): RamVolume => {
    const volume = volumes().get(name);
    if (!volume) throw new NotFoundError("volume", name, { driver: "ram" });
    return volume;
  };
  const record = (name: string): VolumeRecord => ({ name, key: `ram://${config.name}/${name}`, path: `ram://${config.name}/${name}` });
  const used = () => [...volumes().values()].reduce((sum, v) => sum + v.file.storedBytes(), 0);
  return {
    async build() {
      if (!pools.has(config.name)) pools.set(config.name, new Map());
    },
    async start() {
      if (!pools.has(config.name)) throw new StateError(`Cannot start pool "${config.name}": build it first`, { state: "not built", driver: "ram" });
    },
    async delete() {
      if (volumes().size > 0) throw new ConflictError(`Cannot delete pool "${config.name}": it still has volumes`);
      pools.delete(config.name);
    },
    async refresh() {},
    async sizes() {
      const allocationBytes = used();
      return { capacityBytes: config.capacityBytes, allocationBytes, availableBytes: Math.max(0, config.capacityBytes - allocationBytes) };
    },
    async listVolumes() {
      return [...volumes().keys()].sort().map(record);
    },
    async lookupVolume(name) {
      find(name);
      return record(name);
    },
    async volumeInfo(name) {
      const volume = find(name);
      const allocationBytes = volume.file.storedBytes();
      return { capacityBytes: volume.capacityBytes, allocationBytes, physicalBytes: await volume.file.size(), format: volume.format };
    },
    async createVolume(spec) {
      if (spec.backing) throw new UnsupportedError("backing images", { driver: "ram" });
      if (volumes().has(spec.name)) throw new ConflictError(`Volume "${spec.name}" exists in pool "${config.name}"`);
      const file = createMemoryFile();
      if (spec.format === "qcow2") await createQcow2(file, { capacityBytes: spec.capacityBytes });
      else await file.truncate(spec.capacityBytes);
      volumes().set(spec.name, { file, format: spec.format, capacityBytes: spec.capacityBytes });
      return record(spec.name);
    },
    async deleteVolume(name) {
      find(name);
      volumes().delete(name);
    },
    async resizeVolume(name, capacityBytes) {
      const volume = find(name);
      if (volume.format !== "raw") throw new UnsupportedError("resize of a qcow2 volume", { driver: "ram" });
      await volume.file.truncate(capacityBytes);
      volume.capacityBytes = capacityBytes;
    },
    async openVolume(name, mode) {
      const volume = find(name);
      return await openImage(borrowed(volume.file), { name: `volume "${name}"`, format: volume.format, writable: mode.write });
    },
  };
}

/** The `ram` backend. */
export const ramBackend = defineStorageBackend<RamPoolConfig>({
  name: "ram",
  // What its pools implement (checked by virtkit when a pool opens; the support matrix lists it).
  capabilities: ["build", "start", "delete", "createVolume", "deleteVolume", "resizeVolume", "openVolume"],
  validate(config) {
    if (!Number.isSafeInteger(config.capacityBytes) || config.capacityBytes <= 0) {
      throw new TypeError(`Invalid capacityBytes for pool "${config.name}": expected a positive whole number of bytes`);
    }
  },
  open: async (config) => openRamPool(config),
});

/** The plugin users add with `await registry.use(ramPlugin)`. */
export const ramPlugin = definePlugin({
  name: "ram-pool",
  apiVersion: API_VERSION,
  setup(host) {
    host.registry.register(ramBackend);
  },
});
