/**
 * Loads a checked fixture into a connection in two steps: `planFixture` builds every pool and volume
 * off to the side and checks every reference and name, then `commitPools` and `commitDomains` make
 * them visible. A fixture that fails its checks changes nothing.
 *
 * @module
 */
import type { DomainConfig } from "../../core/domain.ts";
import type { StorageAccess } from "../../core/storage_backend.ts";
import { ConflictError, VirtError } from "../../core/errors.ts";
import type { MemoryPoolConfig } from "../../core/storage_pool.ts";
import type { DomainTable } from "./domains.ts";
import type { CheckedTestFixture, FixtureDomain, FixturePool } from "./fixture.ts";
import {
  DEFAULT_POOL_CAPACITY_BYTES,
  type MemoryHost,
  type MemoryPoolData,
  type MemoryVolume,
  memoryVolumeKey,
  poolAllocationBytes,
} from "./memory_host.ts";
import { createContentStore } from "./volume_content.ts";

/** Where a fixture goes. */
export interface FixtureTarget {
  /** The connection's memory storage. */
  readonly host: MemoryHost;
  /** The connection's domains. */
  readonly domains: DomainTable;
  /** The connection's pools, to check references to volumes of pools that are not memory pools. */
  readonly storage?: StorageAccess;
}

/** A fixture built but not yet visible. */
export interface FixturePlan {
  /** Pool definitions with their storage. */
  readonly pools: ReadonlyArray<{ readonly config: MemoryPoolConfig; readonly data: MemoryPoolData }>;
  /** Domain definitions with their initial state. */
  readonly domains: ReadonlyArray<{ readonly config: DomainConfig; readonly state: NonNullable<FixtureDomain["state"]> }>;
}

function invalid(path: string, why: string): TypeError {
  return new TypeError(`Invalid fixture: ${path} ${why}`);
}

function buildPool(pool: FixturePool, path: string, target: FixtureTarget, planned: Map<string, MemoryPoolData>): MemoryPoolData {
  if (target.host.pools.has(pool.name)) {
    throw new ConflictError(`Cannot load fixture: ${path} names pool "${pool.name}", whose memory storage exists`, { driver: "test" });
  }
  const data: MemoryPoolData = { name: pool.name, capacityBytes: pool.capacityBytes ?? DEFAULT_POOL_CAPACITY_BYTES, volumes: new Map() };
  planned.set(pool.name, data);
  const find = (p: string, v: string): MemoryVolume | undefined => (planned.get(p) ?? target.host.pools.get(p))?.volumes.get(v);
  (pool.volumes ?? []).forEach((volume, i) => {
    const at = `${path}.volumes[${i}]`;
    const available = data.capacityBytes - poolAllocationBytes(data);
    if (volume.capacityBytes > available) {
      throw new RangeError(
        `Invalid fixture: ${at}.capacityBytes is ${volume.capacityBytes}, but pool "${pool.name}" has ${Math.max(0, available)} bytes free`,
      );
    }
    const below = volume.backing && find(volume.backing.pool, volume.backing.name);
    if (volume.backing && !below) {
      throw invalid(`${at}.backing`, `names volume "${volume.backing.name}" of pool "${volume.backing.pool}", which is neither listed before it nor on the connection`);
    }
    const store = createContentStore({
      name: volume.name,
      capacityBytes: volume.capacityBytes,
      resolveBacking: (ref) => target.host.resolveStore(ref.path),
      ...(below ? { backing: { ref: { path: below.key, format: below.format }, store: below.store } } : {}),
      ...(volume.content ? { content: volume.content } : {}),
    });
    const key = memoryVolumeKey(pool.name, volume.name);
    data.volumes.set(volume.name, { name: volume.name, key, format: volume.format ?? "raw", store });
  });
  return data;
}

async function volumeExists(pool: string, name: string, target: FixtureTarget, planned: Map<string, MemoryPoolData>): Promise<boolean> {
  const data = planned.get(pool) ?? target.host.pools.get(pool);
  if (data) return data.volumes.has(name);
  if (!target.storage) return false;
  try {
    await (await target.storage.backend(pool)).lookupVolume(name);
    return true;
  } catch (error) {
    if (error instanceof VirtError) return false;
    throw error;
  }
}

async function checkDomain(domain: FixtureDomain, path: string, target: FixtureTarget, planned: Map<string, MemoryPoolData>): Promise<void> {
  try {
    target.domains.checkDefinable(domain);
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    throw new ConflictError(`Cannot load fixture: ${path}: ${error.message}`, { driver: "test", cause: error });
  }
  // libvirt checks disks when a domain starts; a domain that is already running must have them now.
  if ((domain.state ?? "shutoff") === "shutoff") return;
  for (const [i, disk] of domain.disks.entries()) {
    if (disk.volume && !(await volumeExists(disk.volume.pool, disk.volume.name, target, planned))) {
      const { pool, name } = disk.volume;
      throw invalid(`${path}.disks[${i}].volume`, `names volume "${name}" of pool "${pool}", which does not exist, but the domain is ${domain.state}`);
    }
  }
}

/**
 * Builds a checked fixture's pools and volumes off to the side and checks its domains against the
 * connection, without changing anything.
 *
 * @param fixture A fixture from `parseFixture`.
 * @param target The connection's parts.
 * @returns What {@linkcode commitPools} and {@linkcode commitDomains} make visible.
 * @throws {TypeError} For a reference to a volume that is neither in the fixture (before it) nor on the
 *   connection, or a running domain whose disk volume does not exist; the message names the path.
 * @throws {RangeError} For a volume that does not fit in its pool's free space.
 * @throws {ConflictError} For a pool or domain name (or UUID) the connection has.
 * @example
 * ```ts
 * import { planFixture } from "./fixture_load.ts";
 * import { DomainTable } from "./domains.ts";
 * import { MemoryHost } from "./memory_host.ts";
 * const bus = { emit() {} } as unknown as import("../../core/event_bus.ts").EventBus;
 * const plan = await planFixture({ pools: [{ name: "p", type: "memory", volumes: [{ name: "a", capacityBytes: 4096 }] }] },
 *   { host: new MemoryHost(), domains: new DomainTable(bus) });
 * if (plan.pools[0]?.data.volumes.size !== 1) throw new Error("unexpected");
 * ```
 */
export async function planFixture(fixture: CheckedTestFixture, target: FixtureTarget): Promise<FixturePlan> {
  const planned = new Map<string, MemoryPoolData>();
  const pools = (fixture.pools ?? []).map((pool, i) => {
    const data = buildPool(pool, `pools[${i}]`, target, planned);
    const config: MemoryPoolConfig = { name: pool.name, type: "memory", capacityBytes: data.capacityBytes };
    return { config, data };
  });
  const domains: Array<FixturePlan["domains"][number]> = [];
  const uuids = new Map<string, string>();
  for (const [i, domain] of (fixture.domains ?? []).entries()) {
    await checkDomain(domain, `domains[${i}]`, target, planned);
    const owner = domain.uuid === undefined ? undefined : uuids.get(domain.uuid);
    if (owner !== undefined) throw invalid(`domains[${i}].uuid`, `repeats the UUID of domain "${owner}"`);
    if (domain.uuid !== undefined) uuids.set(domain.uuid, domain.name);
    const { state = "shutoff", ...config } = domain;
    domains.push({ config: config as DomainConfig, state });
  }
  return { pools, domains };
}

/**
 * Makes a plan's pool storage visible to the connection's `memory` pools.
 *
 * @param plan A plan from {@linkcode planFixture}.
 * @param host The connection's memory storage.
 * @returns A function that takes the storage back out (when core refuses the pools).
 */
export function commitPools(plan: FixturePlan, host: MemoryHost): () => void {
  for (const { data } of plan.pools) host.pools.set(data.name, data);
  return () => {
    for (const { data } of plan.pools) if (host.pools.get(data.name) === data) host.pools.delete(data.name);
  };
}

/**
 * Defines a plan's domains (each emits `domain:defined`).
 *
 * @param plan A plan from {@linkcode planFixture}.
 * @param domains The connection's domains.
 */
export function commitDomains(plan: FixturePlan, domains: DomainTable): void {
  for (const { config, state } of plan.domains) domains.define(config, state);
}
