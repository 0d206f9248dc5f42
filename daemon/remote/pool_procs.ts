/**
 * Storage pool procedures of libvirt's REMOTE program: listing, look-ups, info, XML, define/create,
 * build, start, destroy, delete, undefine, refresh and autostart, over virtkit's pools. Pool XML is read
 * and written by `core/xml`.
 *
 * @module
 */
import type { StoragePool } from "../../core/storage_pool.ts";
import { poolFromXml, poolToXml } from "../../core/xml/mod.ts";
import { LibvirtErrorCode } from "../../drivers/remote/rpc/errors.ts";
import {
  CONNECT_LIST_ALL_STORAGE_POOLS,
  PoolStateCode,
  STORAGE_POOL_BUILD,
  STORAGE_POOL_CREATE,
  STORAGE_POOL_CREATE_XML,
  STORAGE_POOL_DEFINE_XML,
  STORAGE_POOL_DELETE,
  STORAGE_POOL_DESTROY,
  STORAGE_POOL_GET_AUTOSTART,
  STORAGE_POOL_GET_INFO,
  STORAGE_POOL_GET_XML_DESC,
  STORAGE_POOL_IS_ACTIVE,
  STORAGE_POOL_IS_PERSISTENT,
  STORAGE_POOL_LOOKUP_BY_NAME,
  STORAGE_POOL_LOOKUP_BY_UUID,
  STORAGE_POOL_LOOKUP_BY_VOLUME,
  STORAGE_POOL_REFRESH,
  STORAGE_POOL_SET_AUTOSTART,
  STORAGE_POOL_UNDEFINE,
} from "../../drivers/remote/rpc/protocol/storage.ts";
import { RpcFault, serve, type ServedProcedure } from "../dispatch.ts";
import { checkFlags } from "./domain_procs.ts";
import { connOf } from "./domain_refs.ts";
import { allPools, poolByUuid, poolOf, poolRefOf, uuidOfPool } from "./storage_refs.ts";

// virConnectListAllStoragePoolsFlags: activity, persistence, autostart, and one bit per pool type.
const LIST = Object.freeze({ INACTIVE: 1, ACTIVE: 2, PERSISTENT: 4, TRANSIENT: 8, AUTOSTART: 16, NO_AUTOSTART: 32 });
const TYPE_BITS: Readonly<Record<string, number>> = Object.freeze({ dir: 64, logical: 512, iscsi: 2048 });
const ALL_TYPE_BITS = 0xfffc0; // DIR (64) .. ISCSI_DIRECT (1 << 19)

/** Whether libvirt would start the pool with a new connection (the `storage` issue adds autostart). */
async function autostartOf(pool: StoragePool): Promise<boolean> {
  const info = await pool.info() as { autostart?: unknown };
  return info.autostart === true;
}

/** Whether a pool passes `virConnectListAllStoragePools` filter flags (each group filters only when set). */
async function passes(pool: StoragePool, flags: number): Promise<boolean> {
  const group = (mask: number, pass: number) => (flags & mask) === 0 || (flags & pass) !== 0;
  const info = await pool.info();
  const autostart = await autostartOf(pool);
  return group(LIST.ACTIVE | LIST.INACTIVE, info.state === "active" ? LIST.ACTIVE : LIST.INACTIVE) &&
    group(LIST.PERSISTENT | LIST.TRANSIENT, LIST.PERSISTENT) &&
    group(LIST.AUTOSTART | LIST.NO_AUTOSTART, autostart ? LIST.AUTOSTART : LIST.NO_AUTOSTART) &&
    group(ALL_TYPE_BITS, TYPE_BITS[pool.type] ?? 0);
}

function parsePoolXml(xml: string) {
  try {
    return poolFromXml(xml).config;
  } catch (error) {
    if (error instanceof TypeError) throw new RpcFault(LibvirtErrorCode.XML_ERROR, `XML error: ${error.message}`);
    throw error;
  }
}

/** The storage pool procedures. */
export const POOL_PROCEDURES: readonly ServedProcedure[] = [
  serve(CONNECT_LIST_ALL_STORAGE_POOLS, async (ctx, { needResults, flags }) => {
    const pools = await allPools(ctx);
    const matching: StoragePool[] = [];
    for (const pool of pools) if (await passes(pool, flags)) matching.push(pool);
    return { pools: needResults ? await Promise.all(matching.map(poolRefOf)) : [], ret: matching.length };
  }),
  serve(STORAGE_POOL_LOOKUP_BY_NAME, async (ctx, name) => poolRefOf(await connOf(ctx).conn.pools.get(name))),
  serve(STORAGE_POOL_LOOKUP_BY_UUID, async (ctx, uuid) => poolRefOf(await poolByUuid(ctx, uuid))),
  serve(STORAGE_POOL_LOOKUP_BY_VOLUME, async (ctx, { vol }) => poolRefOf(await connOf(ctx).conn.pools.get(vol.pool))),
  serve(STORAGE_POOL_GET_INFO, async (ctx, { pool }) => {
    const info = await (await poolOf(ctx, pool)).info();
    return {
      state: info.state === "active" ? PoolStateCode.RUNNING : PoolStateCode.INACTIVE,
      capacity: info.capacityBytes,
      allocation: info.allocationBytes,
      available: info.availableBytes,
    };
  }),
  serve(STORAGE_POOL_GET_XML_DESC, async (ctx, { pool: ref, flags }) => {
    checkFlags(flags, 1, "virStoragePoolGetXMLDesc"); // INACTIVE: the definition is all there is
    const pool = await poolOf(ctx, ref);
    const config = await pool.config();
    // The test driver's memory pools read as libvirt's test driver shows its own pools: type dir, with
    // a target named after the pool (its volumes' paths are /POOL/NAME already).
    const shown = config.type === "memory" ? { name: config.name, type: "dir" as const, path: `/${config.name}` } : config;
    return poolToXml({ ...shown, uuid: await uuidOfPool(pool) } as Parameters<typeof poolToXml>[0]);
  }),
  serve(STORAGE_POOL_IS_ACTIVE, async (ctx, { pool }) => ((await (await poolOf(ctx, pool)).info()).state === "active" ? 1 : 0)),
  serve(STORAGE_POOL_IS_PERSISTENT, async (ctx, { pool }) => (await poolOf(ctx, pool), 1)),
  serve(STORAGE_POOL_GET_AUTOSTART, async (ctx, { pool }) => ((await autostartOf(await poolOf(ctx, pool))) ? 1 : 0)),
  serve(STORAGE_POOL_SET_AUTOSTART, async (ctx, { pool: ref, autostart }) => {
    const pool = await poolOf(ctx, ref) as StoragePool & { setAutostart?: (on: boolean) => Promise<void> };
    if (typeof pool.setAutostart !== "function") {
      throw new RpcFault(LibvirtErrorCode.NO_SUPPORT, "this function is not supported by the connection driver: virStoragePoolSetAutostart");
    }
    await pool.setAutostart(autostart !== 0);
  }),
  serve(STORAGE_POOL_DEFINE_XML, async (ctx, { xml, flags }) => {
    checkFlags(flags, 0, "virStoragePoolDefineXML");
    return poolRefOf(await connOf(ctx).conn.pools.define(parsePoolXml(xml)));
  }),
  serve(STORAGE_POOL_CREATE_XML, async (ctx, { xml, flags }) => {
    // BUILD 1, BUILD_OVERWRITE 2, BUILD_NO_OVERWRITE 4. virtkit pools are persistent: this defines and
    // starts one (building it first when asked), where libvirt would make a transient pool.
    checkFlags(flags, 7, "virStoragePoolCreateXML");
    const pool = await connOf(ctx).conn.pools.define(parsePoolXml(xml));
    if (flags & 7) await pool.build();
    await pool.start();
    return poolRefOf(pool);
  }),
  serve(STORAGE_POOL_BUILD, async (ctx, { pool, flags }) => {
    checkFlags(flags, 7, "virStoragePoolBuild"); // NEW 0, REPAIR 1, RESIZE 2, NO_OVERWRITE 4
    if (flags & 3) throw new RpcFault(LibvirtErrorCode.NO_SUPPORT, "this function is not supported by the connection driver: virStoragePoolBuild with REPAIR or RESIZE");
    await (await poolOf(ctx, pool)).build();
  }),
  serve(STORAGE_POOL_CREATE, async (ctx, { pool, flags }) => {
    checkFlags(flags, 7, "virStoragePoolCreate");
    const handle = await poolOf(ctx, pool);
    if (flags & 7) await handle.build();
    await handle.start();
  }),
  serve(STORAGE_POOL_DESTROY, async (ctx, { pool }) => (await poolOf(ctx, pool)).stop()),
  serve(STORAGE_POOL_DELETE, async (ctx, { pool, flags }) => {
    checkFlags(flags, 1, "virStoragePoolDelete"); // ZEROED: nothing to zero in a removed directory
    await (await poolOf(ctx, pool)).delete();
  }),
  serve(STORAGE_POOL_UNDEFINE, async (ctx, { pool }) => (await poolOf(ctx, pool)).undefine()),
  serve(STORAGE_POOL_REFRESH, async (ctx, { pool, flags }) => {
    checkFlags(flags, 0, "virStoragePoolRefresh");
    await (await poolOf(ctx, pool)).refresh();
  }),
];
