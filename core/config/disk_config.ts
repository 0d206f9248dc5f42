/**
 * The schema of one disk of a domain ({@linkcode DiskConfig}): a pool volume or a host path, attached
 * at a guest target.
 *
 * @module
 */
import * as v from "valibot";
import { nameSchema, pathSchema, volumeRefSchema } from "./rules.ts";

/** Longest disk target name (libvirt's are short: `vda`, `sdaa`). */
export const MAX_TARGET_LENGTH = 32;

// An image format name as QEMU spells its block drivers (raw, qcow2, qed, vmdk, ...).
const FORMAT = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/**
 * One disk. Fields:
 * - `target` (required): the guest target, `vda`, `vdb`, ... (`vdX` is virtio on the `qemu` driver);
 * - `volume` `{ pool, name }` or `path` (exactly one): what backs it;
 * - `format`: the image format; no default (the driver probes the image, as `qemu-img info` does);
 * - `readonly`: the guest sees the disk read-only; default false, and a checked config leaves a `false`
 *   out (one spelling per meaning, as in libvirt's XML, where only `<readonly/>` exists).
 *
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { DiskConfigSchema } from "virtkit";
 * if (!v.is(DiskConfigSchema, { target: "vda", path: "/i/a.qcow2" })) throw new Error("unexpected");
 * if (v.is(DiskConfigSchema, { target: "vda", path: "/i/a.qcow2", readOnly: true })) throw new Error("typo accepted");
 * ```
 */
export const DiskConfigSchema = v.pipe(
  v.strictObject({
    /** Guest target name (`"vda"`, `"vdb"`, ...). */
    target: nameSchema(MAX_TARGET_LENGTH),
    /** A volume of a pool; give this or `path`. */
    volume: v.optional(volumeRefSchema),
    /** A host path; give this or `volume`. */
    path: v.optional(pathSchema),
    /** Image format; probed when absent. */
    format: v.optional(v.pipe(v.string(), v.check((f) => FORMAT.test(f), 'it is not an image format such as "qcow2"'))),
    /** Guest sees the disk read-only. */
    readonly: v.optional(v.boolean()),
  }),
  v.check((disk) => (disk.volume === undefined) !== (disk.path === undefined), "a disk needs exactly one of volume and path"),
  // The object is valibot's fresh output, not the caller's input, so dropping the key here is safe.
  v.transform((disk) => {
    if (disk.readonly === false) delete disk.readonly;
    return disk;
  }),
);

/** One disk of a {@linkcode DomainConfig}: a pool volume or a host path (what users write). */
export type DiskConfig = v.InferInput<typeof DiskConfigSchema>;
