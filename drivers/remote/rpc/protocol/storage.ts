/**
 * Storage procedures of the REMOTE program: pools and volumes, including the two stream-opening calls
 * (upload 208, download 209). Numbers and shapes from libvirt's remote_protocol.x.
 *
 * @example
 * ```ts
 * import { STORAGE_VOL_DOWNLOAD } from "./storage.ts";
 * import { encode } from "../codec.ts";
 * const vol = { pool: "p", name: "v", key: "/p/v" };
 * const bytes = encode(STORAGE_VOL_DOWNLOAD.args, { vol, offset: 0, length: 4096, flags: 0 });
 * if (bytes.length !== 3 * 8 + 8 + 8 + 4 || STORAGE_VOL_DOWNLOAD.number !== 209) throw new Error("unexpected");
 * ```
 *
 * @module
 */
import { array, int, small, struct, uhyper, uint, voidCodec } from "../codec.ts";
import { nonnullString, poolRef, procedure, uuid, volumeRef } from "./common.ts";

/** `virStoragePoolState`. */
export const PoolStateCode = Object.freeze({ INACTIVE: 0, BUILDING: 1, RUNNING: 2, DEGRADED: 3, INACCESSIBLE: 4 });
/** `virStorageVolType`. */
export const VolumeTypeCode = Object.freeze({ FILE: 0, BLOCK: 1, DIR: 2, NETWORK: 3, NETDIR: 4, PLOOP: 5 });
/** `virConnectListAllStoragePoolsFlags` (the first two). */
export const ListPoolsFlags = Object.freeze({ INACTIVE: 1, ACTIVE: 2 });
/** `virStorageVolInfoFlags`. */
export const VolumeInfoFlags = Object.freeze({ USE_ALLOCATION: 0, GET_PHYSICAL: 1 });
/** `virStorageVolResizeFlags`. */
export const VolumeResizeFlags = Object.freeze({ ALLOCATE: 1, DELTA: 2, SHRINK: 4 });
/** `virStorageVolUploadFlags` / `virStorageVolDownloadFlags`. */
export const VolumeStreamFlags = Object.freeze({ SPARSE_STREAM: 1 });

const pool = struct({ pool: poolRef });
const poolFlags = struct({ pool: poolRef, flags: uint });
const vol = struct({ vol: volumeRef });
const volFlags = struct({ vol: volumeRef, flags: uint });
const xmlFlags = struct({ xml: nonnullString, flags: uint });
const volRange = struct({ vol: volumeRef, offset: uhyper, length: uhyper, flags: uint });
const volInfo = struct({ type: small(-128, 255), capacity: uhyper, allocation: uhyper });

/** 76: XML, flags -> pool (transient, started). */
export const STORAGE_POOL_CREATE_XML = procedure(76, "STORAGE_POOL_CREATE_XML", xmlFlags, poolRef);
/** 77: XML, flags -> pool (persistent, inactive). */
export const STORAGE_POOL_DEFINE_XML = procedure(77, "STORAGE_POOL_DEFINE_XML", xmlFlags, poolRef);
/** 78: pool, flags -> void (start). */
export const STORAGE_POOL_CREATE = procedure(78, "STORAGE_POOL_CREATE", poolFlags, voidCodec);
/** 79: pool, flags -> void. */
export const STORAGE_POOL_BUILD = procedure(79, "STORAGE_POOL_BUILD", poolFlags, voidCodec);
/** 80: pool -> void (stop). */
export const STORAGE_POOL_DESTROY = procedure(80, "STORAGE_POOL_DESTROY", pool, voidCodec);
/** 81: pool, flags -> void (remove the storage). */
export const STORAGE_POOL_DELETE = procedure(81, "STORAGE_POOL_DELETE", poolFlags, voidCodec);
/** 82: pool -> void. */
export const STORAGE_POOL_UNDEFINE = procedure(82, "STORAGE_POOL_UNDEFINE", pool, voidCodec);
/** 83: pool, flags -> void. */
export const STORAGE_POOL_REFRESH = procedure(83, "STORAGE_POOL_REFRESH", poolFlags, voidCodec);
/** 84: name -> pool. */
export const STORAGE_POOL_LOOKUP_BY_NAME = procedure(84, "STORAGE_POOL_LOOKUP_BY_NAME", nonnullString, poolRef);
/** 85: UUID -> pool. */
export const STORAGE_POOL_LOOKUP_BY_UUID = procedure(85, "STORAGE_POOL_LOOKUP_BY_UUID", uuid, poolRef);
/** 86: vol -> its pool. */
export const STORAGE_POOL_LOOKUP_BY_VOLUME = procedure(86, "STORAGE_POOL_LOOKUP_BY_VOLUME", vol, poolRef);
/** 87: pool -> state (uchar), capacity, allocation, available (bytes). */
export const STORAGE_POOL_GET_INFO = procedure(87, "STORAGE_POOL_GET_INFO", pool, struct({
  state: small(0, 255),
  capacity: uhyper,
  allocation: uhyper,
  available: uhyper,
}));
/** 88: pool, flags -> XML. */
export const STORAGE_POOL_GET_XML_DESC = procedure(88, "STORAGE_POOL_GET_XML_DESC", poolFlags, nonnullString);
/** 89: pool -> 0/1. */
export const STORAGE_POOL_GET_AUTOSTART = procedure(89, "STORAGE_POOL_GET_AUTOSTART", pool, int);
/** 90: pool, autostart -> void. */
export const STORAGE_POOL_SET_AUTOSTART = procedure(90, "STORAGE_POOL_SET_AUTOSTART", struct({ pool: poolRef, autostart: int }), voidCodec);
/** 93: pool, XML, flags -> vol. */
export const STORAGE_VOL_CREATE_XML = procedure(93, "STORAGE_VOL_CREATE_XML", struct({ pool: poolRef, xml: nonnullString, flags: uint }), volumeRef);
/** 94: vol, flags -> void. */
export const STORAGE_VOL_DELETE = procedure(94, "STORAGE_VOL_DELETE", volFlags, voidCodec);
/** 95: pool, name -> vol. */
export const STORAGE_VOL_LOOKUP_BY_NAME = procedure(95, "STORAGE_VOL_LOOKUP_BY_NAME", struct({ pool: poolRef, name: nonnullString }), volumeRef);
/** 96: key -> vol. */
export const STORAGE_VOL_LOOKUP_BY_KEY = procedure(96, "STORAGE_VOL_LOOKUP_BY_KEY", nonnullString, volumeRef);
/** 97: path -> vol. */
export const STORAGE_VOL_LOOKUP_BY_PATH = procedure(97, "STORAGE_VOL_LOOKUP_BY_PATH", nonnullString, volumeRef);
/** 98: vol -> type (char), capacity, allocation. */
export const STORAGE_VOL_GET_INFO = procedure(98, "STORAGE_VOL_GET_INFO", vol, volInfo);
/** 99: vol, flags -> XML. */
export const STORAGE_VOL_GET_XML_DESC = procedure(99, "STORAGE_VOL_GET_XML_DESC", volFlags, nonnullString);
/** 100: vol -> path. */
export const STORAGE_VOL_GET_PATH = procedure(100, "STORAGE_VOL_GET_PATH", vol, nonnullString);
/** 125: pool, XML, source vol, flags -> vol (clone). */
export const STORAGE_VOL_CREATE_XML_FROM = procedure(125, "STORAGE_VOL_CREATE_XML_FROM", struct({
  pool: poolRef,
  xml: nonnullString,
  clonevol: volumeRef,
  flags: uint,
}), volumeRef);
/** 154: pool -> 0/1. */
export const STORAGE_POOL_IS_ACTIVE = procedure(154, "STORAGE_POOL_IS_ACTIVE", pool, int);
/** 155: pool -> 0/1. */
export const STORAGE_POOL_IS_PERSISTENT = procedure(155, "STORAGE_POOL_IS_PERSISTENT", pool, int);
/** 165: vol, flags -> void. */
export const STORAGE_VOL_WIPE = procedure(165, "STORAGE_VOL_WIPE", volFlags, voidCodec);
/** 208: vol, offset, length, flags -> void; then the client sends STREAM frames. */
export const STORAGE_VOL_UPLOAD = procedure(208, "STORAGE_VOL_UPLOAD", volRange, voidCodec);
/** 209: vol, offset, length, flags -> void; then the server sends STREAM frames. */
export const STORAGE_VOL_DOWNLOAD = procedure(209, "STORAGE_VOL_DOWNLOAD", volRange, voidCodec);
/** 260: vol, capacity, flags -> void. */
export const STORAGE_VOL_RESIZE = procedure(260, "STORAGE_VOL_RESIZE", struct({ vol: volumeRef, capacity: uhyper, flags: uint }), voidCodec);
/** 281: need_results, flags -> pools, count. */
export const CONNECT_LIST_ALL_STORAGE_POOLS = procedure(281, "CONNECT_LIST_ALL_STORAGE_POOLS", struct({ needResults: int, flags: uint }), struct({
  pools: array(poolRef, 16384),
  ret: uint,
}));
/** 282: pool, need_results, flags -> vols, count. */
export const STORAGE_POOL_LIST_ALL_VOLUMES = procedure(282, "STORAGE_POOL_LIST_ALL_VOLUMES", struct({ pool: poolRef, needResults: int, flags: uint }), struct({
  vols: array(volumeRef, 16384),
  ret: uint,
}));
/** 378: vol, flags -> type, capacity, allocation (or physical size with GET_PHYSICAL). */
export const STORAGE_VOL_GET_INFO_FLAGS = procedure(378, "STORAGE_VOL_GET_INFO_FLAGS", volFlags, volInfo);
