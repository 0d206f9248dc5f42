/**
 * The schema of a domain definition ({@linkcode DomainConfig}), with its defaults. Everything that
 * defines a domain goes through it: `conn.domains.define()`, `defineXml()`, the `test` driver's
 * fixtures, the CLI.
 *
 * Defaults:
 * - `uuid`: a random UUID (given ones are lower-cased);
 * - `machine`: `"q35"`, libvirt's default for x86_64: a machine a guest boots on, where the `qemu` driver
 *   attaches each disk as a device (`virtio-blk-pci` for `vdX`) and passes `-smp vcpus`. `"none"` is
 *   QEMU's machine without firmware or devices: disks are only `-blockdev` nodes, for block-job-only
 *   uses and tests;
 *
 * @module
 */
import * as v from "valibot";
import { DiskConfigSchema } from "./disk_config.ts";
import { namedBy, parseConfig } from "./parse_config.ts";
import { bytesSchema, integerSchema, nameSchema, uniqueBy, uuidSchema } from "./rules.ts";

/** Longest domain name (libvirt has none, but QEMU process names and state files want a short one). */
export const MAX_DOMAIN_NAME_LENGTH = 64;
/** Most vCPUs a domain config may ask for (QEMU's largest `maxcpus` on x86 is 4096 or less). */
export const MAX_VCPUS = 4096;
/** The machine type when a config names none (libvirt's default for x86_64). */
export const DEFAULT_MACHINE = "q35";

const MACHINE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * The fields of a domain definition, for schemas that extend it (the `test` driver's fixtures).
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { domainConfigEntries } from "./domain_config.ts";
 * const WithState = v.strictObject({ ...domainConfigEntries, state: v.optional(v.string()) });
 * if (!v.is(WithState, { name: "a", vcpus: 1, memoryBytes: 1, disks: [], state: "running" })) throw new Error("unexpected");
 * ```
 */
export const domainConfigEntries = {
  /** Unique name: 1 to 64 characters, no `/`, no control characters, not `.` or `..`. */
  name: nameSchema(MAX_DOMAIN_NAME_LENGTH),
  /** UUID (8-4-4-4-12 hex digits, lower-cased); a random one when absent. */
  uuid: v.optional(uuidSchema, () => crypto.randomUUID() as string),
  /** Virtual CPUs, 1 to 4096. */
  vcpus: integerSchema(1, MAX_VCPUS),
  /** Guest memory in bytes (above 0). */
  memoryBytes: bytesSchema(1),
  /** Machine type (`"q35"`, `"pc"`, `"none"`, `"pc-q35-7.2"`); `"q35"` when absent. */
  machine: v.optional(
    v.pipe(v.string(), v.check((m) => MACHINE.test(m), 'it is not a machine type such as "q35"')),
    DEFAULT_MACHINE,
  ),
  /** Disks, in order; targets unique. */
  disks: v.pipe(v.array(DiskConfigSchema), uniqueBy("target", "disk target")),
};

/**
 * A domain definition: `name` (1 to 64 characters, no `/`), `uuid`, `vcpus` (1 to 4096),
 * `memoryBytes` (above 0), `machine`, `disks` (targets unique). Unknown fields are refused.
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { DomainConfigSchema } from "virtkit";
 * const config = v.parse(DomainConfigSchema, { name: "web1", vcpus: 2, memoryBytes: 2 ** 30, disks: [] });
 * if (config.machine !== "q35" || typeof config.uuid !== "string") throw new Error("unexpected");
 * ```
 */
export const DomainConfigSchema = v.strictObject(domainConfigEntries);

/** What a domain is made of, as users write it (optional fields may be left out). */
export type DomainConfig = v.InferInput<typeof DomainConfigSchema>;
/** A checked domain config: defaults applied, so `uuid` and `machine` are always there. */
export type CheckedDomainConfig = v.InferOutput<typeof DomainConfigSchema>;

/**
 * Checks a domain config and returns a normalized copy (defaults applied, UUID lower-cased).
 *
 * @param config What the user gave.
 * @returns The checked config.
 * @throws {TypeError} For a missing, malformed or unknown field (the message names its path,
 *   `disks[1].target`), a disk with both or neither of `volume` and `path`, a target used twice.
 * @throws {RangeError} For `vcpus` or `memoryBytes` out of range.
 * @example
 * ```ts
 * import { checkDomainConfig } from "virtkit";
 * let message = "";
 * try { checkDomainConfig({ name: "web1", vcpus: 1, memoryBytes: 2 ** 26, disks: [{ target: "vda", path: "/a" }, { target: "vd/b", path: "/b" }] }); }
 * catch (error) { message = (error as Error).message; }
 * if (!message.includes("disks[1].target")) throw new Error(message);
 * ```
 */
export function checkDomainConfig(config: DomainConfig): CheckedDomainConfig {
  return parseConfig(DomainConfigSchema, config, namedBy("domain config"));
}
