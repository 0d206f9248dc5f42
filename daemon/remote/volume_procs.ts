/**
 * Storage volume procedures of libvirt's REMOTE program: listing, look-ups, info, path, XML, create,
 * clone, wipe, resize and delete, over virtkit's volumes. libvirt's clone and wipe are synchronous, so
 * the daemon waits for virtkit's job (which stays in the job list, where the extension program shows it).
 *
 * @module
 */
import type { StoragePool } from "../../core/storage_pool.ts";
import type { Volume } from "../../core/volume.ts";
import { volumeFromXml, volumeToXml } from "../../core/xml/mod.ts";
import { LibvirtErrorCode } from "../../drivers/remote/rpc/errors.ts";
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
  VolumeTypeCode,
} from "../../drivers/remote/rpc/protocol/storage.ts";
import { RpcFault, serve, type ServedProcedure } from "../dispatch.ts";
import { checkFlags } from "./domain_procs.ts";
import { connOf } from "./domain_refs.ts";
import { poolOf, volumeOf, volumeRefOf } from "./storage_refs.ts";

/** libvirt's volume type for a pool type: files in dir (and the test driver's memory) pools, LVs are block devices, iSCSI LUNs (reached directly) network volumes. */
function volumeTypeOf(pool: StoragePool): number {
  return pool.type === "logical" ? VolumeTypeCode.BLOCK : pool.type === "iscsi" ? VolumeTypeCode.NETWORK : VolumeTypeCode.FILE;
}

function parseVolumeXml(xml: string) {
  try {
    return volumeFromXml(xml).config;
  } catch (error) {
    if (error instanceof TypeError) throw new RpcFault(LibvirtErrorCode.XML_ERROR, `XML error: ${error.message}`);
    throw error;
  }
}

async function volumeInfo(pool: StoragePool, vol: Volume, physical: boolean) {
  const info = await vol.info();
  return { type: volumeTypeOf(pool), capacity: info.capacityBytes, allocation: physical ? info.physicalBytes : info.allocationBytes };
}

/** The storage volume procedures (streams are in `stream_procs.ts`). */
export const VOLUME_PROCEDURES: readonly ServedProcedure[] = [
  serve(STORAGE_POOL_LIST_ALL_VOLUMES, async (ctx, { pool, needResults, flags }) => {
    checkFlags(flags, 0, "virStoragePoolListAllVolumes");
    const vols = await (await poolOf(ctx, pool)).volumes.list();
    return { vols: needResults ? vols.map(volumeRefOf) : [], ret: vols.length };
  }),
  serve(STORAGE_VOL_LOOKUP_BY_NAME, async (ctx, { pool, name }) => volumeRefOf(await (await poolOf(ctx, pool)).volumes.get(name))),
  serve(STORAGE_VOL_LOOKUP_BY_KEY, async (ctx, key) => volumeRefOf(await connOf(ctx).conn.volumes.lookup({ key }))),
  serve(STORAGE_VOL_LOOKUP_BY_PATH, async (ctx, path) => volumeRefOf(await connOf(ctx).conn.volumes.lookup({ path }))),
  serve(STORAGE_VOL_GET_INFO, async (ctx, { vol }) => {
    const handle = await volumeOf(ctx, vol);
    return volumeInfo(await connOf(ctx).conn.pools.get(vol.pool), handle, false);
  }),
  serve(STORAGE_VOL_GET_INFO_FLAGS, async (ctx, { vol, flags }) => {
    checkFlags(flags, VolumeInfoFlags.GET_PHYSICAL, "virStorageVolGetInfoFlags");
    const handle = await volumeOf(ctx, vol);
    return volumeInfo(await connOf(ctx).conn.pools.get(vol.pool), handle, (flags & VolumeInfoFlags.GET_PHYSICAL) !== 0);
  }),
  serve(STORAGE_VOL_GET_PATH, async (ctx, { vol }) => (await volumeOf(ctx, vol)).path),
  serve(STORAGE_VOL_GET_XML_DESC, async (ctx, { vol: ref, flags }) => {
    checkFlags(flags, 0, "virStorageVolGetXMLDesc");
    const vol = await volumeOf(ctx, ref);
    const info = await vol.info();
    const format = info.format === "qcow2" ? "qcow2" : "raw";
    return volumeToXml({
      name: vol.name,
      capacityBytes: info.capacityBytes,
      allocationBytes: info.allocationBytes,
      format,
      ...(info.backing ? { backing: { path: info.backing.path, format: info.backing.format } } : {}),
    } as Parameters<typeof volumeToXml>[0]);
  }),
  serve(STORAGE_VOL_CREATE_XML, async (ctx, { pool, xml, flags }) => {
    checkFlags(flags, 3, "virStorageVolCreateXML"); // PREALLOC_METADATA 1, REFLINK 2: virtkit volumes are thin
    const { allocationBytes: _allocation, ...spec } = parseVolumeXml(xml);
    return volumeRefOf(await (await poolOf(ctx, pool)).volumes.create(spec));
  }),
  serve(STORAGE_VOL_CREATE_XML_FROM, async (ctx, { pool, xml, clonevol, flags }) => {
    checkFlags(flags, 3, "virStorageVolCreateXMLFrom");
    const spec = parseVolumeXml(xml);
    const source = await volumeOf(ctx, clonevol);
    const job = await (await poolOf(ctx, pool)).volumes.clone(source, { name: spec.name, ...(spec.format ? { format: spec.format } : {}) });
    return volumeRefOf(await job.wait());
  }),
  serve(STORAGE_VOL_WIPE, async (ctx, { vol, flags }) => {
    checkFlags(flags, 0, "virStorageVolWipe");
    await (await (await volumeOf(ctx, vol)).wipe()).wait();
  }),
  serve(STORAGE_VOL_RESIZE, async (ctx, { vol: ref, capacity, flags }) => {
    checkFlags(flags, VolumeResizeFlags.ALLOCATE | VolumeResizeFlags.DELTA | VolumeResizeFlags.SHRINK, "virStorageVolResize");
    const vol = await volumeOf(ctx, ref);
    const shrink = (flags & VolumeResizeFlags.SHRINK) !== 0;
    let target = capacity;
    if (flags & VolumeResizeFlags.DELTA) {
      const current = (await vol.info()).capacityBytes;
      target = shrink ? current - capacity : current + capacity;
      if (target < 0) throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: can't shrink capacity below 0 bytes`);
    }
    await vol.resize(target, { shrink });
    if (flags & VolumeResizeFlags.ALLOCATE) await (await vol.allocate()).wait();
  }),
  serve(STORAGE_VOL_DELETE, async (ctx, { vol, flags }) => {
    checkFlags(flags, 3, "virStorageVolDelete"); // ZEROED 1, WITH_SNAPSHOTS 2
    await (await volumeOf(ctx, vol)).delete();
  }),
];
