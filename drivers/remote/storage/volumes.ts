/**
 * The volumes of a remote pool, and `conn.volumes.lookup()`: libvirt's volume calls, with volume XML
 * from core/xml for creation and for format and backing in `info()`. Clone (CREATE_XML_FROM) and wipe
 * run as jobs in the connection's job list; upload and download are jobs over libvirt streams
 * (`transfers.ts`). libvirt has no API for extents, allocate or an offline pull of a volume: those
 * throw `UnsupportedError`; nor a cap on clone or wipe, so a non-zero `bandwidth` there throws too.
 * libvirt sends no volume events, so `volume:created`, `volume:deleted` and `volume:resized` are
 * emitted here after the calls succeed.
 *
 * @module
 */
import { UnsupportedError } from "../../../core/errors.ts";
import type { Job } from "../../../core/job.ts";
import type { SignalOptions } from "../../../core/options.ts";
import { assertBandwidth, assertBytes } from "../../../core/units.ts";
import { assertName } from "../../../core/validate.ts";
import type { CappedRangeOptions, Volume, VolumeCollection, VolumeInfo, VolumeLookup } from "../../../core/volume.ts";
import { volumeFromXml, volumeToXml } from "../../../core/xml/mod.ts";
import type { PoolRefValue, VolumeRefValue } from "../rpc/protocol/common.ts";
import {
  STORAGE_POOL_LIST_ALL_VOLUMES,
  STORAGE_VOL_CREATE_XML,
  STORAGE_VOL_CREATE_XML_FROM,
  STORAGE_VOL_DELETE,
  STORAGE_VOL_GET_INFO,
  STORAGE_VOL_GET_INFO_FLAGS,
  STORAGE_VOL_GET_PATH,
  STORAGE_VOL_GET_XML_DESC,
  STORAGE_VOL_LOOKUP_BY_KEY,
  STORAGE_VOL_LOOKUP_BY_NAME,
  STORAGE_VOL_LOOKUP_BY_PATH,
  STORAGE_VOL_RESIZE,
  STORAGE_VOL_WIPE,
  VolumeInfoFlags,
  VolumeResizeFlags,
} from "../rpc/protocol/storage.ts";
import { callContext, type RemoteStorageContext } from "./context.ts";
import { startRemoteDownload, startRemoteUpload } from "./transfers.ts";

/**
 * Builds the volume collection of one pool.
 *
 * @param ctx The connection's parts.
 * @param pool The pool.
 * @returns The collection.
 * @example
 * ```ts
 * import { createVolumeCollection } from "./volumes.ts";
 * const volumes = createVolumeCollection({} as never, { name: "p", uuid: "11111111-2222-3333-4444-555555555555" });
 * if (typeof volumes.clone !== "function") throw new Error("unexpected");
 * ```
 */
export function createVolumeCollection(ctx: RemoteStorageContext, pool: PoolRefValue): VolumeCollection {
  const { client } = ctx;
  const handle = async (vol: VolumeRefValue, options?: SignalOptions) =>
    createVolumeHandle(ctx, vol, await client.call(STORAGE_VOL_GET_PATH, { vol }, callContext(vol.name, `read volume "${vol.name}"`, options)));
  const collection: VolumeCollection = {
    async list(options?: SignalOptions) {
      const { vols } = await client.call(STORAGE_POOL_LIST_ALL_VOLUMES, { pool, needResults: 1, flags: 0 }, callContext(pool.name, `list the volumes of pool "${pool.name}"`, options));
      const handles = await Promise.all(vols.map((v) => handle(v, options)));
      return handles.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
    async get(name: string, options?: SignalOptions) {
      assertName(name, "volume name");
      return await handle(await client.call(STORAGE_VOL_LOOKUP_BY_NAME, { pool, name }, callContext(name, `get volume "${name}"`, options)), options);
    },
    async create(spec) {
      // Thin, as on every driver: libvirt allocates the whole capacity when <allocation> is left out.
      const xml = volumeToXml({ name: spec.name, capacityBytes: spec.capacityBytes, allocationBytes: 0, format: spec.format ?? "raw", ...(spec.backing ? { backing: spec.backing } : {}) });
      const vol = await client.call(STORAGE_VOL_CREATE_XML, { pool, xml, flags: 0 }, callContext(spec.name, `create volume "${spec.name}" in pool "${pool.name}"`, spec));
      ctx.bus.emit("volume:created", { pool: pool.name, volume: vol.name });
      return await handle(vol, spec);
    },
    async clone(source: Volume, options) {
      assertName(options.name, "volume name");
      const daemon = ctx.daemon?.();
      if (daemon) {
        assertBandwidth(options.bandwidth, "bandwidth");
        const info = await daemon.ext.startJob({
          operation: "clone", pool: source.pool, volume: source.name, name: options.name,
          ...(options.format ? { format: options.format } : {}), ...(options.bandwidth ? { bandwidth: options.bandwidth } : {}),
        }, callContext(options.name, `clone volume "${source.name}"`, options));
        return await daemon.mirrored(info) as Job<Volume>;
      }
      if ((options.bandwidth ?? 0) !== 0) throw new UnsupportedError("volume.clone with a bandwidth cap", { driver: "remote", detail: "libvirt's CREATE_XML_FROM takes no cap" });
      const sourceRef = { pool: source.pool, name: source.name, key: source.key };
      const info = await source.info(options);
      const format = options.format ?? (info.format === "qcow2" ? "qcow2" : "raw");
      // Allocation 0: libvirt then copies sparsely (holes stay holes); left out, it writes every zero.
      const xml = volumeToXml({ name: options.name, capacityBytes: info.capacityBytes, allocationBytes: 0, format });
      const job: Job<Volume> = ctx.jobs.startLocal<Volume>({
        type: "volume-clone",
        target: { pool: pool.name, volume: options.name },
        endBytes: info.capacityBytes,
        locks: [`volume:${pool.name}/${options.name}`],
        driver: "remote",
        run: async (job) => {
          // libvirt reports no progress and cannot cancel a clone: an abort takes effect when it returns.
          const vol = await client.call(STORAGE_VOL_CREATE_XML_FROM, { pool, xml, clonevol: sourceRef, flags: 0 }, callContext(options.name, `clone volume "${source.name}"`));
          if (job.signal.aborted) {
            await client.call(STORAGE_VOL_DELETE, { vol, flags: 0 }).catch(() => {});
            throw job.signal.reason;
          }
          job.progress(info.capacityBytes);
          ctx.bus.emit("volume:created", { pool: pool.name, volume: vol.name });
          return await handle(vol);
        },
      });
      return job;
    },
  };
  return Object.freeze(collection);
}

/**
 * `conn.volumes` of a remote connection: by key (VOL_LOOKUP_BY_KEY) or path (VOL_LOOKUP_BY_PATH).
 *
 * @param ctx The connection's parts.
 * @returns The lookup.
 */
export function createVolumeLookup(ctx: RemoteStorageContext): VolumeLookup {
  return Object.freeze({
    async lookup(query: { key: string } | { path: string }, options?: SignalOptions): Promise<Volume> {
      const byKey = "key" in query;
      const text = byKey ? query.key : query.path;
      if (typeof text !== "string" || text === "") throw new TypeError(`Invalid volume lookup: expected a non-empty ${byKey ? "key" : "path"}`);
      const call = callContext(text, `look up volume "${text}"`, options);
      const vol = byKey ? await ctx.client.call(STORAGE_VOL_LOOKUP_BY_KEY, text, call) : await ctx.client.call(STORAGE_VOL_LOOKUP_BY_PATH, text, call);
      const path = await ctx.client.call(STORAGE_VOL_GET_PATH, { vol }, call);
      return createVolumeHandle(ctx, vol, path);
    },
  });
}

function rangeFields(options?: { offset?: number; length?: number }): { offset?: number; length?: number } {
  return { ...(options?.offset === undefined ? {} : { offset: options.offset }), ...(options?.length === undefined ? {} : { length: options.length }) };
}

function capOf(options?: { bandwidth?: number }): { bandwidth?: number } {
  return options?.bandwidth ? { bandwidth: assertBandwidth(options.bandwidth, "bandwidth") } : {};
}

function createVolumeHandle(ctx: RemoteStorageContext, vol: VolumeRefValue, path: string): Volume {
  const { client } = ctx;
  /** On virtkitd: a volume job libvirt cannot express, started through virtkit's program; undefined elsewhere. */
  const daemonJob = (operation: "allocate" | "pull" | "wipe", fields: object, options?: SignalOptions): Promise<Job<void>> | undefined => {
    const daemon = ctx.daemon?.();
    if (!daemon) return undefined;
    return (async () => {
      const info = await daemon.ext.startJob({ operation, pool: vol.pool, volume: vol.name, ...fields }, about(operation, options));
      return await daemon.mirrored(info) as Job<void>;
    })();
  };
  const about = (what: string, options?: SignalOptions) => callContext(vol.name, `${what} volume "${vol.name}" of pool "${vol.pool}"`, options);
  const unsupported = (operation: string) => Promise.reject(new UnsupportedError(operation, { driver: "remote", detail: "libvirt has no API for it" }));
  const self: Volume = Object.freeze({
    name: vol.name,
    key: vol.key,
    path,
    pool: vol.pool,
    async info(options?: SignalOptions): Promise<VolumeInfo> {
      const [basic, physical, xml] = await Promise.all([
        client.call(STORAGE_VOL_GET_INFO, { vol }, about("read", options)),
        client.call(STORAGE_VOL_GET_INFO_FLAGS, { vol, flags: VolumeInfoFlags.GET_PHYSICAL }, about("read", options)),
        client.call(STORAGE_VOL_GET_XML_DESC, { vol, flags: 0 }, about("read", options)),
      ]);
      const { config } = volumeFromXml(xml);
      return {
        capacityBytes: basic.capacity,
        allocationBytes: basic.allocation,
        physicalBytes: physical.allocation,
        format: config.format,
        ...(config.backing ? { backing: config.backing } : {}),
      };
    },
    extents: (options?: { offset?: number; length?: number; signal?: AbortSignal }) => {
      const daemon = ctx.daemon?.();
      if (!daemon) return { [Symbol.asyncIterator]: () => ({ next: () => unsupported("volume.extents") }) };
      return (async function* () {
        yield* await daemon.ext.extents({ pool: vol.pool, volume: vol.name, ...rangeFields(options) }, about("read the extents of", options));
      })();
    },
    allocate: async (options?: CappedRangeOptions) => await daemonJob("allocate", { ...rangeFields(options), ...capOf(options) }, options) ?? unsupported("volume.allocate"),
    pull: async (options?: SignalOptions & { bandwidth?: number }) => await daemonJob("pull", capOf(options), options) ?? unsupported("volume.pull"),
    async wipe(options?: SignalOptions & { bandwidth?: number }) {
      const onDaemon = daemonJob("wipe", capOf(options), options);
      if (onDaemon) return await onDaemon;
      if ((options?.bandwidth ?? 0) !== 0) throw new UnsupportedError("volume.wipe with a bandwidth cap", { driver: "remote", detail: "libvirt's VOL_WIPE takes no cap" });
      const info = await self.info(options);
      return ctx.jobs.startLocal<void>({
        type: "volume-wipe",
        target: { pool: vol.pool, volume: vol.name },
        endBytes: info.capacityBytes,
        locks: [vol.key],
        driver: "remote",
        run: async (job) => {
          await client.call(STORAGE_VOL_WIPE, { vol, flags: 0 }, about("wipe"));
          job.progress(info.capacityBytes);
        },
      });
    },
    upload: (options?: CappedRangeOptions) => startRemoteUpload(ctx, vol, options ?? {}),
    download: (options?: CappedRangeOptions) => startRemoteDownload(ctx, vol, options ?? {}),
    async resize(capacityBytes: number, options?: SignalOptions & { shrink?: boolean }) {
      assertBytes(capacityBytes, "capacityBytes");
      await client.call(STORAGE_VOL_RESIZE, { vol, capacity: capacityBytes, flags: options?.shrink ? VolumeResizeFlags.SHRINK : 0 }, about("resize", options));
      ctx.bus.emit("volume:resized", { pool: vol.pool, volume: vol.name, capacityBytes });
    },
    async delete(options?: SignalOptions) {
      await client.call(STORAGE_VOL_DELETE, { vol, flags: 0 }, about("delete", options));
      ctx.bus.emit("volume:deleted", { pool: vol.pool, volume: vol.name });
    },
  });
  return self;
}

