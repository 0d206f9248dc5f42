/**
 * `conn.pools` of a remote connection: libvirt's storage pools, defined from virtkit's `PoolConfig`
 * written as pool XML by core/xml, and driven by libvirt's pool calls (build, create = start, destroy =
 * stop, refresh, delete, undefine). A pool's `type` and `config()` come from its XML.
 *
 * Choices: `define()` of a taken name is a `ConflictError` (checked first, libvirt's message differs
 * by version); `create()` is define + build + start, as virtkit's contract says (libvirt's
 * pool-create makes a transient pool instead); an `iscsi` pool whose `auth` gives a password is an
 * `UnsupportedError` (pool XML names a secret object of the peer instead), as is mutual CHAP on a libvirtd.
 *
 * @module
 */
import { ConflictError, NotFoundError, UnsupportedError } from "../../../core/errors.ts";
import type { SignalOptions } from "../../../core/options.ts";
import type { IscsiPoolConfig, PoolCollection, PoolConfig, PoolInfo, StoragePool } from "../../../core/storage_pool.ts";
import { assertName } from "../../../core/validate.ts";
import { poolFromXml, poolToXml } from "../../../core/xml/mod.ts";
import { parseXmlDocument } from "../../../core/xml/xml_document.ts";
import { LibvirtErrorCode, libvirtErrorOf } from "../rpc/errors.ts";
import type { PoolRefValue } from "../rpc/protocol/common.ts";
import {
  CONNECT_LIST_ALL_STORAGE_POOLS,
  PoolStateCode,
  STORAGE_POOL_BUILD,
  STORAGE_POOL_CREATE,
  STORAGE_POOL_DEFINE_XML,
  STORAGE_POOL_DELETE,
  STORAGE_POOL_DESTROY,
  STORAGE_POOL_GET_INFO,
  STORAGE_POOL_GET_XML_DESC,
  STORAGE_POOL_LOOKUP_BY_NAME,
  STORAGE_POOL_REFRESH,
  STORAGE_POOL_UNDEFINE,
  STORAGE_POOL_GET_AUTOSTART,
  STORAGE_POOL_SET_AUTOSTART,
} from "../rpc/protocol/storage.ts";
import { callContext, type RemoteStorageContext, withPoolEvent } from "./context.ts";
import { createVolumeCollection } from "./volumes.ts";

/** `VIR_STORAGE_XML_INACTIVE`: the persistent definition. */
const XML_INACTIVE = 1;

/**
 * Builds `conn.pools`.
 *
 * @param ctx The connection's parts.
 * @returns The collection.
 * @example
 * ```ts
 * import { createPoolCollection } from "./pools.ts";
 * const pools = createPoolCollection({} as never);
 * if (typeof pools.define !== "function") throw new Error("unexpected");
 * ```
 */
export function createPoolCollection(ctx: RemoteStorageContext): PoolCollection {
  const { client } = ctx;
  const typeOf = async (pool: PoolRefValue, options?: SignalOptions) => {
    const xml = await client.call(STORAGE_POOL_GET_XML_DESC, { pool, flags: XML_INACTIVE }, callContext(pool.name, `read pool "${pool.name}"`, options));
    // The root's type attribute alone: a pool type virtkit has no backend for is still listed.
    return parseXmlDocument(xml, `pool "${pool.name}"`).attributes.type ?? "unknown";
  };
  const handle = async (pool: PoolRefValue, options?: SignalOptions) => createPoolHandle(ctx, pool, await typeOf(pool, options));
  const lookup = (name: string, options?: SignalOptions) =>
    client.call(STORAGE_POOL_LOOKUP_BY_NAME, name, callContext(name, `get pool "${name}"`, options));
  const collection: PoolCollection = {
    async list(options) {
      const { pools } = await client.call(CONNECT_LIST_ALL_STORAGE_POOLS, { needResults: 1, flags: 0 }, { signal: options?.signal, operation: "list pools" });
      return await Promise.all(pools.map((p) => handle(p, options)));
    },
    async get(name, options) {
      assertName(name, "pool name");
      return await handle(await lookup(name, options), options);
    },
    async define(config, options) {
      assertNoChapPassword(config, ctx.daemon?.() !== undefined);
      const xml = poolToXml(config);
      const taken = await lookup(config.name, options).then(() => true, (error) => {
        if (error instanceof NotFoundError) return false;
        throw error;
      });
      if (taken) throw new ConflictError(`Cannot define pool "${config.name}": a pool of that name exists`, { driver: "remote" });
      const pool = await withPoolEvent(ctx, config.name, "pool:defined", () =>
        client.call(STORAGE_POOL_DEFINE_XML, { xml, flags: 0 }, callContext(config.name, `define pool "${config.name}"`, options)));
      return createPoolHandle(ctx, pool, config.type);
    },
    async defineXml(xml, options) {
      return await collection.define(poolFromXml(xml, options).config, options);
    },
    async create(config, options) {
      const pool = await collection.define(config, options);
      await pool.build(options);
      await pool.start(options);
      return pool;
    },
  };
  return Object.freeze(collection);
}

/**
 * Pool XML holds no CHAP password, only the name of the peer's secret object that has it, so a
 * definition that gives the password cannot be sent as it is: the caller defines the secret on the peer
 * and names it in `auth.secret`. libvirt has no mutual CHAP: it would drop the target's account, and the
 * pool would log in without checking the target.
 */
function assertNoChapPassword(config: PoolConfig, onVirtkitd: boolean): void {
  if (config.type !== "iscsi") return;
  const auth = (config as IscsiPoolConfig).auth;
  if (auth === undefined) return;
  const about = `pool "${config.name}"`;
  if (auth.password !== undefined || auth.mutual?.password !== undefined) {
    throw new UnsupportedError("define", {
      driver: "remote",
      detail: `${about} gives a CHAP password, which pool XML cannot carry: libvirt needs a secret object (virsh secret-define with usage type iscsi, then secret-set-value); name it in auth.secret ({ usage } or { uuid }) and leave out auth.password`,
    });
  }
  if (auth.mutual !== undefined && !onVirtkitd) {
    throw new UnsupportedError("define", { driver: "remote", detail: `${about} asks for mutual CHAP (auth.mutual), which libvirt's iscsi pools do not have; it would log in without checking the target` });
  }
}

function createPoolHandle(ctx: RemoteStorageContext, pool: PoolRefValue, type: string): StoragePool {
  const { client } = ctx;
  const about = (what: string, options?: SignalOptions) => callContext(pool.name, `${what} pool "${pool.name}"`, options);
  return Object.freeze({
    name: pool.name,
    type,
    async info(options?: SignalOptions): Promise<PoolInfo> {
      const read = callContext(pool.name, `read pool "${pool.name}"`, options);
      const [info, autostart] = await Promise.all([client.call(STORAGE_POOL_GET_INFO, { pool }, read), client.call(STORAGE_POOL_GET_AUTOSTART, { pool }, read)]);
      const active = info.state === PoolStateCode.RUNNING || info.state === PoolStateCode.DEGRADED;
      return {
        state: active ? "active" : "inactive",
        capacityBytes: info.capacity,
        allocationBytes: info.allocation,
        availableBytes: info.available,
        autostart: autostart !== 0,
      };
    },
    async config(options?: SignalOptions): Promise<PoolConfig> {
      const xml = await client.call(STORAGE_POOL_GET_XML_DESC, { pool, flags: XML_INACTIVE }, callContext(pool.name, `read pool "${pool.name}"`, options));
      return poolFromXml(xml).config;
    },
    async xml(options?: SignalOptions): Promise<string> {
      return poolToXml(await this.config(options));
    },
    async setAutostart(autostart: boolean, options?: SignalOptions): Promise<void> {
      if (typeof autostart !== "boolean") throw new TypeError(`Invalid autostart for pool "${pool.name}": expected true or false`);
      await client.call(STORAGE_POOL_SET_AUTOSTART, { pool, autostart: autostart ? 1 : 0 }, about("set autostart of", options));
    },
    build: (options?: SignalOptions) => client.call(STORAGE_POOL_BUILD, { pool, flags: 0 }, about("build", options)),
    start: (options?: SignalOptions) => withPoolEvent(ctx, pool.name, "pool:started", () => client.call(STORAGE_POOL_CREATE, { pool, flags: 0 }, about("start", options))),
    stop: (options?: SignalOptions) => withPoolEvent(ctx, pool.name, "pool:stopped", () => client.call(STORAGE_POOL_DESTROY, { pool }, about("stop", options))),
    refresh: (options?: SignalOptions) =>
      withPoolEvent(ctx, pool.name, "pool:refreshed", () => client.call(STORAGE_POOL_REFRESH, { pool, flags: 0 }, about("refresh", options))),
    async delete(options?: SignalOptions) {
      try {
        await client.call(STORAGE_POOL_DELETE, { pool, flags: 0 }, about("delete", options));
      } catch (error) {
        // A pool that was never built has nothing to delete (libvirt: SYSTEM_ERROR, ENOENT); virtkit's
        // backends treat that as done.
        const details = libvirtErrorOf(error);
        if (details?.code !== LibvirtErrorCode.SYSTEM_ERROR || !details.message.includes("No such file or directory")) throw error;
      }
    },
    undefine: (options?: SignalOptions) => withPoolEvent(ctx, pool.name, "pool:undefined", () => client.call(STORAGE_POOL_UNDEFINE, { pool }, about("undefine", options))),
    volumes: createVolumeCollection(ctx, pool),
  });
}
