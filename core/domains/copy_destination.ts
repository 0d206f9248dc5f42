/**
 * Where a block copy core runs writes: a volume of a pool (`{ pool, name }`, or a `{ path }` a pool
 * holds), or a bare host path no pool holds, which is made and opened through the `dir` backend over
 * its directory (libvirt's blockcopy to a file: the file is created with the disk's size, in the format
 * asked for, unless `reuseExisting`). A destination the job created is removed again when the job ends
 * before `ready`.
 *
 * @module
 */
import type { DiskSource, LiveBlockCopyRequest } from "../driver.ts";
import type { StorageAccess, StoragePoolBackend } from "../storage_backend.ts";
import { ConflictError, NotFoundError, UnsupportedError } from "../errors.ts";
import type { EventBus } from "../event_bus.ts";
import type { SignalOptions } from "../options.ts";
import { requireOp } from "../storage/volume_checks.ts";
import type { VolumeInfo } from "../volume.ts";
import type { VolumeIO } from "../volume_io.ts";
import { describeVolume, type DiskVolume, findVolumeByPath } from "./disk_volume.ts";

/** A copy's destination, resolved (and created, unless reused). */
export interface CopyDestination {
  /** Its key (the job locks it). */
  readonly key: string;
  /** Its path. */
  readonly path: string;
  /** Its size. */
  readonly capacityBytes: number;
  /** Its format. */
  readonly format: string;
  /** Whether the job created it (then it reads as zeros, or as its backing, where nothing was copied). */
  readonly created: boolean;
  /** What the disk points at after the pivot. */
  readonly pivotTo: DiskSource;
  /** Opens it for writing. */
  open(options?: SignalOptions): Promise<VolumeIO>;
  /** Removes it when the job created it (once; a no-op otherwise). */
  removeCreated(): Promise<void>;
  /** Releases what reaching it holds (the `dir` backend over a host directory). */
  release(): Promise<void>;
}

/**
 * What a created destination takes from the copy's source: its size, format and backing (a
 * {@linkcode DiskVolume} is one; so is a running disk's top image, which a driver describes).
 */
export interface CopySourceImage {
  /** Size, format and backing. */
  readonly info: Pick<VolumeInfo, "capacityBytes" | "format" | "backing">;
}

/** What the destination is made from. */
export interface CopySourceFacts {
  /** The source image (a pool volume, or a running disk's top image). */
  readonly source: CopySourceImage;
  /** Whether the copy keeps the source's backing. */
  readonly shallow: boolean;
  /** The disk is defined by path (then the pivot names a path). */
  readonly diskByPath: boolean;
  /** For messages: `copy disk "vda" of domain "web1"`. */
  readonly what: string;
}

/**
 * Resolves a copy's destination, creating it unless `reuseExisting`.
 *
 * @param env The connection's pools and bus.
 * @param request The copy request (destination, format, reuseExisting, signal).
 * @param facts The source and how it is copied.
 * @returns The destination.
 * @throws {ConflictError} For a destination that exists without `reuseExisting` (also one that
 *   appeared between the check and the create: the message names it either way).
 * @throws {NotFoundError} For one that does not exist with `reuseExisting`.
 * @throws {NotFoundError} For a host path whose directory does not exist.
 * @throws {UnsupportedError} For a host path when the connection has no `dir` backend.
 * @throws {TypeError} For a shallow copy into a raw destination.
 * @example A pool volume on a shut-off `test` domain: created, then pivoted onto (a bare host path is
 * shown in the block jobs guide)
 * ```ts
 * import { connect } from "virtkit";
 * await using conn = await connect("test:///default");
 * const dom = await conn.domains.get("test");
 * await dom.destroy();
 * const ready = new Promise<string>((resolve) => conn.events.on("job:ready", (e) => resolve(e.job.id)));
 * const job = await dom.blockCopy("vda", { destination: { pool: "default-pool", name: "moved.qcow2" } });
 * if ((await ready) !== job.id) throw new Error("another job got ready");
 * await job.finalize();
 * await job.wait();
 * const [vda] = await dom.disks();
 * if (vda!.volume?.name !== "moved.qcow2" || vda!.format !== "qcow2") throw new Error("unexpected");
 * ```
 */
export async function resolveCopyDestination(
  env: { storage: StorageAccess; bus?: EventBus },
  request: LiveBlockCopyRequest,
  facts: CopySourceFacts,
): Promise<CopyDestination> {
  const { storage, bus } = env;
  const destination = request.destination;
  if ("path" in destination) {
    const found = await findVolumeByPath(storage, destination.path, request);
    if (!found) return await hostPathDestination(storage, destination.path, request, facts);
    if (!request.reuseExisting) throw existsError(facts, destination.path);
    return poolDestination(storage, bus, found, false, { path: found.path, format: found.info.format });
  }
  if (request.reuseExisting) {
    const dest = await describeVolume(storage, destination.pool, destination.name, request);
    return poolDestination(storage, bus, dest, false, sourceOf(dest, dest.info.format, facts.diskByPath));
  }
  const format = formatFor(request, facts);
  const backend = await storage.backend(destination.pool);
  const record = await requireOp(backend, "createVolume", undefined, destination.pool)(createSpec(destination.name, format, facts), signalOf(request));
  bus?.emit("volume:created", { pool: destination.pool, volume: record.name });
  try {
    const dest = await describeVolume(storage, destination.pool, record.name, request);
    return poolDestination(storage, bus, dest, true, sourceOf(dest, format, facts.diskByPath));
  } catch (error) {
    await requireOp(backend, "deleteVolume", undefined, destination.pool)(record.name).catch(() => {});
    throw error;
  }
}

/** A bare host path: the `dir` backend over its directory makes, opens and removes it. */
async function hostPathDestination(storage: StorageAccess, path: string, request: LiveBlockCopyRequest, facts: CopySourceFacts): Promise<CopyDestination> {
  const slash = path.lastIndexOf("/");
  if (!path.startsWith("/") || slash === path.length - 1) {
    throw new TypeError(`Invalid destination of ${facts.what}: "${path}" must be an absolute path to a file`);
  }
  if (typeof storage.openHostDirectory !== "function") {
    throw new UnsupportedError("blockCopy", { detail: `cannot ${facts.what} to "${path}": it is not a volume of an active pool and this connection cannot reach host directories` });
  }
  const directory = slash === 0 ? "/" : path.slice(0, slash);
  const name = path.slice(slash + 1);
  const backend = await storage.openHostDirectory(directory, signalOf(request)).catch((error: unknown) => {
    if (error instanceof NotFoundError && error.objectType === "backend") {
      throw new UnsupportedError("blockCopy", { detail: `cannot ${facts.what} to "${path}": the connection has no dir backend to make files with`, cause: error });
    }
    throw new NotFoundError("volume", path, { detail: `its directory "${directory}" cannot be used (${error instanceof Error ? error.message : String(error)})`, cause: error });
  });
  try {
    const existing = await backend.lookupVolume(name, signalOf(request)).catch((error) => {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    });
    if (existing && !request.reuseExisting) throw existsError(facts, path);
    if (!existing && request.reuseExisting) {
      throw new NotFoundError("volume", path, { detail: "reuseExisting needs an existing destination" });
    }
    const format = existing ? (await backend.volumeInfo(name, signalOf(request))).format : formatFor(request, facts);
    const record = existing ?? (await requireOp(backend, "createVolume", undefined, directory)(createSpec(name, format, facts), signalOf(request)).catch((error: unknown) => {
      // A file made there since the check: the backend names a volume of a pool-less directory, the user gave a path.
      if (error instanceof ConflictError) throw existsError(facts, path, error);
      throw error;
    }));
    const info = await backend.volumeInfo(record.name, signalOf(request));
    return hostDestination(backend, record, info, !existing, { path: record.path, format });
  } catch (error) {
    await backend.close?.().catch(() => {});
    throw error;
  }
}

function hostDestination(
  backend: StoragePoolBackend,
  record: { name: string; key: string; path: string },
  info: VolumeInfo,
  created: boolean,
  pivotTo: DiskSource,
): CopyDestination {
  let removable = created;
  return {
    key: record.key,
    path: record.path,
    capacityBytes: info.capacityBytes,
    format: info.format,
    created,
    pivotTo,
    open: (options) => requireOp(backend, "openVolume", undefined, record.path)(record.name, { write: true }, options),
    async removeCreated() {
      if (!removable) return;
      removable = false;
      await requireOp(backend, "deleteVolume", undefined, record.path)(record.name);
    },
    release: async () => await backend.close?.(),
  };
}

function poolDestination(storage: StorageAccess, bus: EventBus | undefined, dest: DiskVolume, created: boolean, pivotTo: DiskSource): CopyDestination {
  let removable = created;
  return {
    key: dest.key,
    path: dest.path,
    capacityBytes: dest.info.capacityBytes,
    format: dest.info.format,
    created,
    pivotTo,
    open: (options) => storage.openVolume(dest.pool, dest.name, { write: true }, options),
    async removeCreated() {
      if (!removable) return;
      removable = false;
      await requireOp(await storage.backend(dest.pool), "deleteVolume", undefined, dest.pool)(dest.name);
      bus?.emit("volume:deleted", { pool: dest.pool, volume: dest.name });
    },
    release: () => Promise.resolve(),
  };
}

function existsError(facts: CopySourceFacts, path: string, cause?: unknown): ConflictError {
  return new ConflictError(`Cannot ${facts.what}: destination "${path}" exists; pass reuseExisting to copy into it`, cause === undefined ? {} : { cause });
}

/** The format of a destination the job creates: as asked, else qcow2 for a shallow copy or a qcow2 source. */
function formatFor(request: LiveBlockCopyRequest, facts: CopySourceFacts): string {
  const format = request.format ?? (facts.shallow || facts.source.info.format === "qcow2" ? "qcow2" : "raw");
  if (facts.shallow && format !== "qcow2") throw new TypeError(`Cannot ${facts.what}: a shallow copy keeps the backing, so its destination must be qcow2`);
  return format;
}

function createSpec(name: string, format: string, facts: CopySourceFacts) {
  const { info } = facts.source;
  return { name, capacityBytes: info.capacityBytes, format: format as "raw" | "qcow2", ...(facts.shallow ? { backing: info.backing! } : {}) };
}

function sourceOf(dest: DiskVolume, format: string, byPath: boolean): DiskSource {
  return byPath ? { path: dest.path, format } : { volume: { pool: dest.pool, name: dest.name }, format };
}

function signalOf(options: SignalOptions): SignalOptions | undefined {
  return options.signal ? { signal: options.signal } : undefined;
}
