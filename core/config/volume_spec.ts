/**
 * The schema of a new volume (`pool.volumes.create()`, `volumeFromXml()`): the spec a storage backend's
 * `createVolume` receives.
 *
 * Defaults: `format` `"raw"`. A `backing` image needs `format: "qcow2"` (raw has no header to name it).
 *
 * @module
 */
import * as v from "valibot";
import { namedBy, parseConfig } from "./parse_config.ts";
import { bytesSchema, nameSchema, pathSchema } from "./rules.ts";

/**
 * `name` (1 to 255 characters, no `/`), `capacityBytes` (above 0), `format`, `backing` `{ path, format }`.
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { VolumeCreateSpecSchema } from "virtkit";
 * if (v.is(VolumeCreateSpecSchema, { name: "a.img", capacityBytes: 1, backing: { path: "/b.img", format: "raw" } })) throw new Error("raw with a backing");
 * ```
 */
export const VolumeCreateSpecSchema = v.pipe(
  v.strictObject({
    /** Volume name: 1 to 255 characters, no `/`. */
    name: nameSchema(255),
    /** Virtual size in bytes (above 0). */
    capacityBytes: bytesSchema(1),
    /** Image format (default `"raw"`). */
    format: v.optional(v.picklist(["raw", "qcow2"]), "raw"),
    /** Backing image (qcow2 only). */
    backing: v.optional(v.strictObject({
      /** Host path (or key) of the backing image. */
      path: pathSchema,
      /** Its format. */
      format: v.pipe(v.string(), v.minLength(1, "it is empty")),
    })),
  }),
  v.check((spec) => spec.backing === undefined || spec.format === "qcow2", "only a qcow2 volume can have a backing image"),
);

/** What `createVolume` receives (checked, `format` defaulted). */
export type VolumeCreateSpec = Readonly<v.InferOutput<typeof VolumeCreateSpecSchema>>;

/**
 * Checks a volume spec and returns it with defaults applied.
 *
 * @param spec Name, capacity, format and backing.
 * @returns The checked spec.
 * @throws {TypeError} For a malformed or unknown field, or a backing on a raw volume.
 * @throws {RangeError} For a capacity of 0 or beyond `MAX_BYTES`.
 * @example
 * ```ts
 * import { checkVolumeSpec } from "virtkit";
 * if (checkVolumeSpec({ name: "a.img", capacityBytes: 4096 }).format !== "raw") throw new Error("unexpected");
 * ```
 */
export function checkVolumeSpec(spec: v.InferInput<typeof VolumeCreateSpecSchema>): VolumeCreateSpec {
  return parseConfig(VolumeCreateSpecSchema, spec, namedBy("volume spec"));
}
