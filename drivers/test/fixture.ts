/**
 * The `test` driver's fixture format and its schema: domains, memory pools and volumes as plain
 * JSON-able data, for `test:///path/to/fixture.json` and `conn.testing.load(fixture)`. A fixture's
 * domains are domain configs (the same schema as `define()`, plus a `state`), its pools memory pool
 * configs (plus their `volumes`).
 *
 * @module
 */
import * as v from "valibot";
import { domainConfigEntries } from "../../core/config/domain_config.ts";
import { parseConfig } from "../../core/config/parse_config.ts";
import { MemoryPoolConfigSchema } from "../../core/config/pool_config.ts";
import { bytesSchema, integerSchema, nameSchema, uniqueBy, volumeRefSchema } from "../../core/config/rules.ts";


/**
 * One run of synthetic content: `offset` and `length` in bytes (ending within the volume), `fill` a byte
 * value (0 to 255) repeated or `"random"`: deterministic pseudo-random bytes from `seed` (default 0) and
 * the offset. Neither costs memory in proportion to `length`.
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { FixtureContentSchema } from "virtkit";
 * if (v.is(FixtureContentSchema, { offset: 0, length: 1, fill: 7, seed: 1 })) throw new Error("seed without random");
 * ```
 */
export const FixtureContentSchema = v.pipe(
  v.strictObject({
    /** Start, in bytes. */
    offset: bytesSchema(0),
    /** Length, in bytes (the run must end within the volume). */
    length: bytesSchema(0),
    /** A byte value (0 to 255) repeated, or `"random"`: pseudo-random bytes from `seed` and the offset. */
    fill: v.union([v.literal("random"), integerSchema(0, 255)]),
    /** Seed of `"random"` content (default 0); the same seed gives the same bytes. */
    seed: v.optional(integerSchema(0, 0xffff_ffff)),
  }),
  v.check((run) => run.seed === undefined || run.fill === "random", 'seed is only meaningful with fill "random"'),
);

/**
 * A volume of a fixture pool: `name` (its key and path are `/<pool>/<name>`), `capacityBytes`, `format`
 * (default `"raw"`), `backing` (qcow2 only: a volume listed earlier or already on the connection),
 * `content` runs applied in order (everything else is a hole).
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { FixtureVolumeSchema } from "virtkit";
 * if (v.parse(FixtureVolumeSchema, { name: "a", capacityBytes: 4096 }).format !== "raw") throw new Error("unexpected");
 * ```
 */
export const FixtureVolumeSchema = v.pipe(
  v.strictObject({
    /** Volume name (its key and path are `/<pool>/<name>`). */
    name: nameSchema(255),
    /** Virtual size in bytes. */
    capacityBytes: bytesSchema(1),
    /** Format label (default `"raw"`). */
    format: v.optional(v.picklist(["raw", "qcow2"]), "raw"),
    /** Backing volume (qcow2 only): listed earlier in the fixture, or already on the connection. */
    backing: v.optional(volumeRefSchema),
    /** Runs of data, applied in order (later runs overwrite earlier ones); everything else is a hole. */
    content: v.optional(v.array(FixtureContentSchema)),
  }),
  v.check((volume) => volume.backing === undefined || volume.format === "qcow2", 'backing needs format "qcow2"'),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const volume = dataset.value;
    volume.content?.forEach((run, index) => {
      if (run.offset + run.length > volume.capacityBytes) {
        addIssue({
          input: run.offset + run.length,
          message: `the run ends there, beyond the volume's ${volume.capacityBytes} bytes`,
          path: [{ type: "object", origin: "value", input: volume, key: "content", value: volume.content },
            { type: "array", origin: "value", input: volume.content!, key: index, value: run }],
        });
      }
    });
  }),
);

/**
 * A memory pool of a fixture: a memory pool config (`capacityBytes` default 100 GiB) and its `volumes`.
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { FixturePoolSchema } from "virtkit";
 * if (v.parse(FixturePoolSchema, { name: "p", type: "memory" }).volumes.length !== 0) throw new Error("unexpected");
 * ```
 */
export const FixturePoolSchema = v.strictObject({
  ...MemoryPoolConfigSchema.entries,
  /** Its volumes, created in order. */
  volumes: v.optional(v.pipe(v.array(FixtureVolumeSchema), uniqueBy("name", "volume")), () => []),
});

/**
 * A domain of a fixture: a domain config and its initial `state` (default `"shutoff"`).
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { FixtureDomainSchema } from "virtkit";
 * const d = v.parse(FixtureDomainSchema, { name: "d", vcpus: 1, memoryBytes: 1, disks: [] });
 * if (d.state !== "shutoff" || d.machine !== "q35") throw new Error("unexpected");
 * ```
 */
export const FixtureDomainSchema = v.strictObject({
  ...domainConfigEntries,
  /** Initial state (default `"shutoff"`). */
  state: v.optional(v.picklist(["running", "paused", "shutoff", "crashed"]), "shutoff"),
});

/**
 * What `conn.testing.load()` and a `test:///path.json` file describe. Pools (and their volumes) are
 * created first, in order, then domains. Loading is all or nothing: the whole description is checked
 * (shape, ranges, references, name clashes with what exists) before anything is created, and a bad
 * field throws a `TypeError` or `RangeError` naming its path, such as `pools[0].volumes[1].capacityBytes`.
 *
 * @example A 1 GiB template full of data and a thin disk over it
 * ```json
 * {
 *   "pools": [{
 *     "name": "images", "type": "memory",
 *     "volumes": [
 *       { "name": "base.img", "capacityBytes": 1073741824,
 *         "content": [{ "offset": 0, "length": 1073741824, "fill": "random", "seed": 7 }] },
 *       { "name": "disk.qcow2", "capacityBytes": 1073741824, "format": "qcow2",
 *         "backing": { "pool": "images", "name": "base.img" } }
 *     ]
 *   }],
 *   "domains": [{
 *     "name": "web1", "vcpus": 2, "memoryBytes": 2147483648, "state": "running",
 *     "disks": [{ "target": "vda", "volume": { "pool": "images", "name": "disk.qcow2" } }]
 *   }]
 * }
 * ```
 */
export const TestFixtureSchema = v.strictObject({
  /** Memory pools with their volumes. */
  pools: v.optional(v.pipe(v.array(FixturePoolSchema), uniqueBy("name", "pool")), () => []),
  /** Domains. */
  domains: v.optional(v.pipe(v.array(FixtureDomainSchema), uniqueBy("name", "domain")), () => []),
});

/** One run of synthetic content written into a fixture volume. */
export type FixtureContent = v.InferOutput<typeof FixtureContentSchema>;
/** A volume of a fixture pool (checked: `format` set). */
export type FixtureVolume = v.InferOutput<typeof FixtureVolumeSchema>;
/** A memory pool of a fixture (checked: `volumes` set). */
export type FixturePool = v.InferOutput<typeof FixturePoolSchema>;
/** A domain of a fixture (checked: `uuid`, `machine` and `state` set). */
export type FixtureDomain = v.InferOutput<typeof FixtureDomainSchema>;
/** A disk of a fixture domain. */
export type FixtureDisk = FixtureDomain["disks"][number];
/** A fixture as written (optional fields may be left out). */
export type TestFixture = v.InferInput<typeof TestFixtureSchema>;
/** A checked fixture: defaults applied. */
export type CheckedTestFixture = v.InferOutput<typeof TestFixtureSchema>;

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
 * import { parseFixture } from "./fixture.ts";
 * const fixture = parseFixture({ pools: [{ name: "p", type: "memory", volumes: [{ name: "a", capacityBytes: 4096 }] }] });
 * if (fixture.pools[0]?.volumes[0]?.format !== "raw") throw new Error("format default not applied");
 * let message = "";
 * try { parseFixture({ pools: [{ name: "p", type: "memory", volumes: [{ name: "a", capacityBytes: -1 }] }] }); }
 * catch (error) { message = (error as Error).message; }
 * if (!message.includes("pools[0].volumes[0].capacityBytes")) throw new Error(message);
 * ```
 */
export function parseFixture(value: unknown): CheckedTestFixture {
  return parseConfig(TestFixtureSchema, value, "fixture");
}
