/**
 * Checks a fixture description field by field, so a typo in a JSON file fails with the path of the bad
 * field instead of a half-loaded connection.
 *
 * @module
 */
import { assertName } from "../../core/validate.ts";
import { MAX_BYTES } from "../../core/units.ts";
import type { FixtureContent, FixtureDisk, FixtureDomain, FixturePool, FixtureVolume, TestFixture } from "./fixture.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const STATES = ["running", "paused", "shutoff", "crashed"] as const;

type Fields = Record<string, unknown>;

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "string" ? JSON.stringify(value) : typeof value;
}

function object(value: unknown, path: string, allowed: readonly string[]): Fields {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`Invalid fixture: ${path || "the fixture"} must be an object, got ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`Invalid fixture: ${path ? `${path}.` : ""}${key} is not a known field (expected ${allowed.join(", ")})`);
    }
  }
  return value as Fields;
}

function array(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw new TypeError(`Invalid fixture: ${path} must be an array, got ${describe(value)}`);
  return value;
}

function name(value: unknown, path: string, maxLength = 255): string {
  try {
    return assertName(value, path, { maxLength });
  } catch (error) {
    throw new TypeError(`Invalid fixture: ${(error as Error).message.replace(/^Invalid /, "")}`);
  }
}

function integer(value: unknown, path: string, min: number, max = MAX_BYTES): number {
  if (typeof value !== "number") throw new TypeError(`Invalid fixture: ${path} must be a number, got ${describe(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`Invalid fixture: ${path} is ${value}, expected a whole number from ${min} to ${max}`);
  }
  return value;
}

function oneOf<T extends string>(value: unknown, path: string, choices: readonly T[]): T {
  if (typeof value !== "string" || !choices.includes(value as T)) {
    throw new TypeError(`Invalid fixture: ${path} is ${describe(value)}, expected one of ${choices.map((c) => `"${c}"`).join(", ")}`);
  }
  return value as T;
}

function volumeRef(value: unknown, path: string): { pool: string; name: string } {
  const ref = object(value, path, ["pool", "name"]);
  return { pool: name(ref.pool, `${path}.pool`), name: name(ref.name, `${path}.name`) };
}

function content(value: unknown, path: string, capacityBytes: number): FixtureContent {
  const f = object(value, path, ["offset", "length", "fill", "seed"]);
  const offset = integer(f.offset, `${path}.offset`, 0);
  const length = integer(f.length, `${path}.length`, 0);
  if (offset + length > capacityBytes) {
    throw new RangeError(`Invalid fixture: ${path} ends at ${offset + length}, beyond the volume's ${capacityBytes} bytes`);
  }
  const fill = f.fill === "random" ? "random" : integer(f.fill, `${path}.fill`, 0, 255);
  const out: FixtureContent = { offset, length, fill };
  if (f.seed !== undefined) {
    if (fill !== "random") throw new TypeError(`Invalid fixture: ${path}.seed is only meaningful with fill "random"`);
    out.seed = integer(f.seed, `${path}.seed`, 0, 0xffff_ffff);
  }
  return out;
}

function volume(value: unknown, path: string): FixtureVolume {
  const f = object(value, path, ["name", "capacityBytes", "format", "backing", "content"]);
  const capacityBytes = integer(f.capacityBytes, `${path}.capacityBytes`, 1);
  const out: FixtureVolume = { name: name(f.name, `${path}.name`), capacityBytes };
  out.format = f.format === undefined ? "raw" : oneOf(f.format, `${path}.format`, ["raw", "qcow2"] as const);
  if (f.backing !== undefined) {
    if (out.format !== "qcow2") throw new TypeError(`Invalid fixture: ${path}.backing needs format "qcow2"`);
    out.backing = volumeRef(f.backing, `${path}.backing`);
  }
  if (f.content !== undefined) {
    out.content = array(f.content, `${path}.content`).map((c, i) => content(c, `${path}.content[${i}]`, capacityBytes));
  }
  return out;
}

function pool(value: unknown, path: string): FixturePool {
  const f = object(value, path, ["name", "type", "capacityBytes", "volumes"]);
  const out: FixturePool = { name: name(f.name, `${path}.name`), type: oneOf(f.type, `${path}.type`, ["memory"] as const) };
  if (f.capacityBytes !== undefined) out.capacityBytes = integer(f.capacityBytes, `${path}.capacityBytes`, 1);
  const volumes = f.volumes === undefined ? [] : array(f.volumes, `${path}.volumes`);
  out.volumes = volumes.map((v, i) => volume(v, `${path}.volumes[${i}]`));
  unique(out.volumes.map((v) => v.name), `${path}.volumes`, "volume");
  return out;
}

function disk(value: unknown, path: string): FixtureDisk {
  const f = object(value, path, ["target", "volume", "path", "format", "readonly"]);
  const out: FixtureDisk = { target: name(f.target, `${path}.target`, 32) };
  if ((f.volume === undefined) === (f.path === undefined)) {
    throw new TypeError(`Invalid fixture: ${path} needs exactly one of volume and path`);
  }
  if (f.volume !== undefined) out.volume = volumeRef(f.volume, `${path}.volume`);
  if (f.path !== undefined) {
    if (typeof f.path !== "string" || !f.path.startsWith("/")) {
      throw new TypeError(`Invalid fixture: ${path}.path must be an absolute path, got ${describe(f.path)}`);
    }
    out.path = f.path;
  }
  if (f.format !== undefined) out.format = oneOf(f.format, `${path}.format`, ["raw", "qcow2"] as const);
  if (f.readonly !== undefined) {
    if (typeof f.readonly !== "boolean") throw new TypeError(`Invalid fixture: ${path}.readonly must be a boolean`);
    out.readonly = f.readonly;
  }
  return out;
}

function domain(value: unknown, path: string): FixtureDomain {
  const f = object(value, path, ["name", "uuid", "vcpus", "memoryBytes", "machine", "state", "disks"]);
  const out: FixtureDomain = {
    name: name(f.name, `${path}.name`, 64),
    vcpus: integer(f.vcpus, `${path}.vcpus`, 1, 4096),
    memoryBytes: integer(f.memoryBytes, `${path}.memoryBytes`, 1),
    disks: array(f.disks, `${path}.disks`).map((d, i) => disk(d, `${path}.disks[${i}]`)),
  };
  if (f.uuid !== undefined) {
    if (typeof f.uuid !== "string" || !UUID.test(f.uuid)) {
      throw new TypeError(`Invalid fixture: ${path}.uuid is ${describe(f.uuid)}, expected a UUID like "6695eb01-f6a4-8304-79aa-97f2502e193f"`);
    }
    out.uuid = f.uuid.toLowerCase();
  }
  if (f.machine !== undefined) {
    if (typeof f.machine !== "string" || f.machine === "") throw new TypeError(`Invalid fixture: ${path}.machine must be a non-empty string`);
    out.machine = f.machine;
  }
  if (f.state !== undefined) out.state = oneOf(f.state, `${path}.state`, STATES);
  unique(out.disks.map((d) => d.target), `${path}.disks`, "disk target");
  return out;
}

function unique(names: string[], path: string, what: string): void {
  const seen = new Set<string>();
  for (const [i, n] of names.entries()) {
    if (seen.has(n)) throw new TypeError(`Invalid fixture: ${path}[${i}] repeats ${what} "${n}"`);
    seen.add(n);
  }
}

/**
 * Checks a fixture description and returns a normalised deep copy (defaults filled in, UUIDs in lower
 * case). References between fixture objects (a backing volume listed later, a disk on a pool that does
 * not exist) are checked when the fixture is loaded, against what the connection already has.
 *
 * @param value Parsed JSON, or an object literal.
 * @returns The checked fixture.
 * @throws {TypeError} For a malformed field; the message names its path (`pools[0].volumes[1].format`).
 * @throws {RangeError} For a number out of range, such as a content run beyond the volume's end.
 * @example
 * ```ts
 * import { parseFixture } from "./fixture_validate.ts";
 * const fixture = parseFixture({ pools: [{ name: "p", type: "memory", volumes: [{ name: "a", capacityBytes: 4096 }] }] });
 * if (fixture.pools?.[0]?.volumes?.[0]?.format !== "raw") throw new Error("format default not applied");
 * let message = "";
 * try { parseFixture({ pools: [{ name: "p", type: "memory", volumes: [{ name: "a", capacityBytes: -1 }] }] }); }
 * catch (error) { message = (error as Error).message; }
 * if (!message.includes("pools[0].volumes[0].capacityBytes")) throw new Error(message);
 * ```
 */
export function parseFixture(value: unknown): TestFixture {
  const f = object(value, "", ["pools", "domains"]);
  const out: TestFixture = {};
  out.pools = f.pools === undefined ? [] : array(f.pools, "pools").map((p, i) => pool(p, `pools[${i}]`));
  out.domains = f.domains === undefined ? [] : array(f.domains, "domains").map((d, i) => domain(d, `domains[${i}]`));
  unique(out.pools.map((p) => p.name), "pools", "pool");
  unique(out.domains.map((d) => d.name), "domains", "domain");
  return out;
}
