/**
 * The `test` driver's fixture format: domains, memory pools and volumes as plain JSON-able data, for
 * `test:///path/to/fixture.json` and `conn.testing.load(fixture)`.
 *
 * @module
 */
import type { VolumeRef } from "../../core/domain.ts";

/** One run of synthetic content written into a fixture volume. */
export interface FixtureContent {
  /** Start, in bytes. */
  offset: number;
  /** Length, in bytes (the run must end within the volume). */
  length: number;
  /**
   * What the run reads as: a byte value (0 to 255) repeated, or `"random"`: deterministic pseudo-random
   * bytes derived from `seed` and the offset. Neither costs memory in proportion to `length`.
   */
  fill: number | "random";
  /** Seed of `"random"` content (default 0); the same seed gives the same bytes. */
  seed?: number;
}

/** A volume of a fixture pool. */
export interface FixtureVolume {
  /** Volume name (its key and path are `/<pool>/<name>`). */
  name: string;
  /** Virtual size in bytes. */
  capacityBytes: number;
  /** Format label (default `"raw"`). */
  format?: "raw" | "qcow2";
  /**
   * Backing volume (qcow2 only): a volume of a memory pool listed earlier in the fixture, or one that
   * already exists on the connection.
   */
  backing?: VolumeRef;
  /** Runs of data, applied in order (later runs overwrite earlier ones); everything else is a hole. */
  content?: FixtureContent[];
}

/** A memory pool of a fixture. */
export interface FixturePool {
  /** Pool name. */
  name: string;
  /** Only `"memory"` pools can be described by a fixture. */
  type: "memory";
  /** Capacity in bytes (default 100 GiB). */
  capacityBytes?: number;
  /** Its volumes, created in order. */
  volumes?: FixtureVolume[];
}

/** A disk of a fixture domain. */
export interface FixtureDisk {
  /** Guest target (`"vda"`). */
  target: string;
  /** A pool volume; give this or `path`. */
  volume?: VolumeRef;
  /** A volume's path (`"/default-pool/test.qcow2"`); give this or `volume`. */
  path?: string;
  /** Image format. */
  format?: "raw" | "qcow2";
  /** Guest sees the disk read-only. */
  readonly?: boolean;
}

/** A domain of a fixture. */
export interface FixtureDomain {
  /** Domain name. */
  name: string;
  /** UUID; generated when absent. */
  uuid?: string;
  /** Virtual CPUs. */
  vcpus: number;
  /** Guest memory in bytes. */
  memoryBytes: number;
  /** Machine type. */
  machine?: string;
  /** Initial state (default `"shutoff"`). */
  state?: "running" | "paused" | "shutoff" | "crashed";
  /** Disks, in order. */
  disks: FixtureDisk[];
}

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
export interface TestFixture {
  /** Memory pools with their volumes. */
  pools?: FixturePool[];
  /** Domains. */
  domains?: FixtureDomain[];
}
