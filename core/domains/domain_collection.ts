/**
 * The public {@linkcode DomainCollection} of a connection, and the one place where a
 * {@linkcode DomainConfig} is checked and normalized before it reaches a driver.
 *
 * @module
 */
import type { DiskConfig, Domain, DomainCollection, DomainConfig } from "../domain.ts";
import { NotFoundError } from "../errors.ts";
import type { SignalOptions } from "../options.ts";
import { requireOp } from "../require_op.ts";
import { assertBytes } from "../units.ts";
import { assertName, assertObject } from "../validate.ts";
import { createDomainHandle, type DomainHandleContext } from "./domain_handle.ts";

/** Longest domain name (libvirt has none, but QEMU process names and state files want a short one). */
export const MAX_DOMAIN_NAME_LENGTH = 64;
/** Most vCPUs a domain config may ask for (QEMU's largest `maxcpus` on x86 is 4096 or less). */
export const MAX_VCPUS = 4096;

const DOMAIN_FIELDS = new Set(["name", "uuid", "vcpus", "memoryBytes", "machine", "disks"]);
const DISK_FIELDS = new Set(["target", "volume", "path", "format", "readonly"]);
// Like libvirt (virUUIDParse + virUUIDIsValid): any 128-bit value written 8-4-4-4-12 in hex, except one
// whose digits are all the same; libvirt's own test UUID has variant 7, so no RFC 4122 version/variant rule.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MACHINE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const FORMAT = /^[a-z0-9][a-z0-9_-]{0,31}$/;
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Creates the domain collection of a connection.
 *
 * @param ctx The connection's driver, job list and open-check.
 * @returns The frozen collection.
 * @example
 * ```ts
 * import { createDomainCollection } from "./domain_collection.ts";
 * const domains = createDomainCollection({
 *   driver: { listDomains: async () => [], domainInfo: async () => { throw new Error("none"); },
 *             domainConfig: async () => { throw new Error("none"); }, close: async () => {} },
 *   driverName: "demo",
 *   jobs: { list: async () => [], get: async () => { throw new Error("none"); } },
 *   diskJobs: {} as never,
 *   assertOpen() {},
 * });
 * if ((await domains.list()).length !== 0) throw new Error("unexpected");
 * ```
 */
export function createDomainCollection(ctx: DomainHandleContext): DomainCollection {
  const { driver } = ctx;
  const open = (what: string, options: SignalOptions | undefined) => {
    ctx.assertOpen(what);
    options?.signal?.throwIfAborted();
  };
  return Object.freeze({
    async list(options?: SignalOptions): Promise<Domain[]> {
      open("list domains", options);
      const names = await driver.listDomains(options);
      const handles = await Promise.all(names.map(async (name) => {
        try {
          const info = await driver.domainInfo(name, options);
          return createDomainHandle(ctx, info.name, info.uuid);
        } catch (error) {
          // Undefined between the two calls: it is simply no longer in the list.
          if (error instanceof NotFoundError) return undefined;
          throw error;
        }
      }));
      return handles.filter((handle): handle is Domain => handle !== undefined);
    },
    async get(name: string, options?: SignalOptions): Promise<Domain> {
      assertName(name, "domain name", { maxLength: MAX_DOMAIN_NAME_LENGTH });
      open(`get domain "${name}"`, options);
      const info = await driver.domainInfo(name, options);
      return createDomainHandle(ctx, info.name, info.uuid);
    },
    async define(config: DomainConfig, options?: SignalOptions): Promise<Domain> {
      const normalized = normalizeDomainConfig(config);
      open(`define domain "${normalized.name}"`, options);
      await requireOp(driver, "defineDomain", ctx.driverName)(normalized, options);
      return createDomainHandle(ctx, normalized.name, normalized.uuid!);
    },
  });
}

/**
 * Checks a domain config and returns a normalized copy: known fields only, a UUID (generated when
 * absent, lower-cased when given), and fresh disk objects.
 *
 * @param config What the user passed to `domains.define()`.
 * @returns A new config with `uuid` set.
 * @throws {TypeError} For a missing, malformed or unknown field, a disk with both or neither of
 *   `volume` and `path`, or a disk target used twice.
 * @throws {RangeError} For `vcpus` that is not a whole number from 1 to {@linkcode MAX_VCPUS}, or
 *   `memoryBytes` that is not a whole number of bytes above 0.
 * @example
 * ```ts
 * import { normalizeDomainConfig } from "./domain_collection.ts";
 * const config = normalizeDomainConfig({ name: "web1", vcpus: 2, memoryBytes: 2 ** 30, disks: [] });
 * if (typeof config.uuid !== "string") throw new Error("unexpected");
 * ```
 */
export function normalizeDomainConfig(config: DomainConfig): DomainConfig {
  const c = assertObject(config, "domain config");
  const name = assertName(c.name, "domain name", { maxLength: MAX_DOMAIN_NAME_LENGTH });
  const what = `domain config "${name}"`;
  rejectUnknown(c, DOMAIN_FIELDS, what);
  let uuid = crypto.randomUUID() as string;
  if (c.uuid !== undefined) {
    if (typeof c.uuid !== "string" || !UUID.test(c.uuid) || /^(.)(\1|-)*$/.test(c.uuid.toLowerCase())) {
      throw new TypeError(`Invalid uuid of ${what}: ${JSON.stringify(c.uuid)} is not a UUID (8-4-4-4-12 hex digits, not all the same)`);
    }
    uuid = c.uuid.toLowerCase();
  }
  if (typeof c.vcpus !== "number") throw new TypeError(`Invalid vcpus of ${what}: expected a number, got ${typeof c.vcpus}`);
  if (!Number.isInteger(c.vcpus) || c.vcpus < 1 || c.vcpus > MAX_VCPUS) {
    throw new RangeError(`Invalid vcpus of ${what}: ${c.vcpus} is not a whole number from 1 to ${MAX_VCPUS}`);
  }
  const memoryBytes = assertBytes(c.memoryBytes, `memoryBytes of ${what}`);
  if (memoryBytes === 0) throw new RangeError(`Invalid memoryBytes of ${what}: a domain needs some memory`);
  if (c.machine !== undefined && (typeof c.machine !== "string" || !MACHINE.test(c.machine))) {
    throw new TypeError(`Invalid machine of ${what}: ${JSON.stringify(c.machine)} is not a machine type such as "q35"`);
  }
  if (!Array.isArray(c.disks)) throw new TypeError(`Invalid disks of ${what}: expected an array`);
  const disks = c.disks.map((disk: unknown, index: number) => normalizeDisk(disk, index, what));
  const seen = new Set<string>();
  for (const disk of disks) {
    if (seen.has(disk.target)) throw new TypeError(`Invalid ${what}: disk target "${disk.target}" is used twice`);
    seen.add(disk.target);
  }
  return {
    name,
    uuid,
    vcpus: c.vcpus,
    memoryBytes,
    ...(c.machine === undefined ? {} : { machine: c.machine as string }),
    disks,
  };
}

function normalizeDisk(value: unknown, index: number, what: string): DiskConfig {
  const d = assertObject(value, `disk ${index} of ${what}`);
  const target = assertName(d.target, `disk target of ${what}`);
  const where = `disk "${target}" of ${what}`;
  rejectUnknown(d, DISK_FIELDS, where);
  if ((d.volume === undefined) === (d.path === undefined)) {
    throw new TypeError(`Invalid ${where}: give exactly one of volume and path`);
  }
  const disk: DiskConfig = { target };
  if (d.volume !== undefined) {
    const v = assertObject(d.volume, `volume of ${where}`);
    rejectUnknown(v, new Set(["pool", "name"]), `volume of ${where}`);
    disk.volume = { pool: assertName(v.pool, `pool name of ${where}`), name: assertName(v.name, `volume name of ${where}`) };
  } else if (typeof d.path !== "string" || d.path === "" || CONTROL.test(d.path)) {
    throw new TypeError(`Invalid path of ${where}: expected a non-empty path without control characters`);
  } else {
    disk.path = d.path;
  }
  if (d.format !== undefined) {
    if (typeof d.format !== "string" || !FORMAT.test(d.format)) {
      throw new TypeError(`Invalid format of ${where}: ${JSON.stringify(d.format)} is not an image format such as "qcow2"`);
    }
    disk.format = d.format;
  }
  if (d.readonly !== undefined) {
    if (typeof d.readonly !== "boolean") throw new TypeError(`Invalid readonly of ${where}: expected a boolean`);
    disk.readonly = d.readonly;
  }
  return disk;
}

/** Unknown fields are rejected, not dropped: a typo such as `readOnly` must not silently give a writable disk. */
function rejectUnknown(object: Record<string, unknown>, known: ReadonlySet<string>, what: string): void {
  for (const key of Object.keys(object)) {
    if (!known.has(key)) throw new TypeError(`Invalid ${what}: unknown field "${key}"`);
  }
}
