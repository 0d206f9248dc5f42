/**
 * Argument checks of `dom.blockPull()`, `dom.blockCopy()` and `dom.blockCommit()`: each rule and its
 * message in one place, applied before anything reaches a driver or changes an image.
 *
 * @module
 */
import type { BlockCommitOptions, BlockCopyDestination, BlockCopyOptions, BlockPullOptions } from "../domain.ts";
import { assertBandwidth, MiB } from "../units.ts";
import { assertName, assertObject } from "../validate.ts";

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const MIN_GRANULARITY_BYTES = 512;
const MAX_GRANULARITY_BYTES = MiB(64);

function assertPath(value: unknown, what: string): string {
  if (typeof value !== "string" || value === "" || CONTROL.test(value)) {
    throw new TypeError(`Invalid ${what}: expected a non-empty path without control characters`);
  }
  return value;
}

function assertFlag(value: unknown, what: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean") throw new TypeError(`Invalid ${what}: expected a boolean`);
  return value;
}

/**
 * Checks the options of a block pull.
 *
 * @param disk The disk target, for messages.
 * @param options What the user passed.
 * @returns The cap and base.
 * @throws {TypeError} For a malformed base. `RangeError` for a bad bandwidth.
 * @example
 * ```ts
 * import { checkPullOptions } from "./block_job_options.ts";
 * if (checkPullOptions("vda", { bandwidth: 1024 }).bandwidth !== 1024) throw new Error("unexpected");
 * ```
 */
export function checkPullOptions(disk: string, options: BlockPullOptions | undefined): { bandwidth: number; base?: string } {
  const bandwidth = assertBandwidth(options?.bandwidth, "bandwidth");
  if (options?.base === undefined) return { bandwidth };
  return { bandwidth, base: assertPath(options.base, `base of block pull on disk "${disk}"`) };
}

/** The checked options of a block copy. */
export interface CheckedCopyOptions {
  /** Where to. */
  readonly destination: BlockCopyDestination;
  /** Format of a created destination. */
  readonly format?: "raw" | "qcow2";
  /** Copy the top image only. */
  readonly shallow: boolean;
  /** Use an existing destination. */
  readonly reuseExisting: boolean;
  /** Cap. */
  readonly bandwidth: number;
  /** Dirty-tracking unit. */
  readonly granularityBytes?: number;
}

/**
 * Checks the options of a block copy.
 *
 * @param disk The disk target, for messages.
 * @param options What the user passed.
 * @returns The checked options.
 * @throws {TypeError} For a missing or malformed destination or format, or non-boolean flags.
 * @throws {RangeError} For a bad bandwidth, or a granularity that is not a power of two from 512 B to 64 MiB.
 * @example
 * ```ts
 * import { checkCopyOptions } from "./block_job_options.ts";
 * const checked = checkCopyOptions("vda", { destination: { pool: "images", name: "copy.qcow2" }, shallow: true });
 * if (!checked.shallow || checked.reuseExisting || checked.bandwidth !== 0) throw new Error("unexpected");
 * let message = "";
 * try { checkCopyOptions("vda", { destination: { path: "/c.img" }, granularityBytes: 1000 }); } catch (e) { message = (e as Error).message; }
 * if (!message.includes("power of two")) throw new Error("unexpected");
 * ```
 */
export function checkCopyOptions(disk: string, options: BlockCopyOptions): CheckedCopyOptions {
  const what = `block copy of disk "${disk}"`;
  const o = assertObject(options, `options of ${what}`);
  const d = assertObject(o.destination, `destination of ${what}`);
  let destination: BlockCopyDestination;
  if (d.path !== undefined) {
    if (d.pool !== undefined || d.name !== undefined) throw new TypeError(`Invalid destination of ${what}: give { pool, name } or { path }, not both`);
    destination = { path: assertPath(d.path, `destination path of ${what}`) };
  } else {
    destination = { pool: assertName(d.pool, `destination pool of ${what}`), name: assertName(d.name, `destination volume of ${what}`) };
  }
  if (o.format !== undefined && o.format !== "raw" && o.format !== "qcow2") {
    throw new TypeError(`Invalid format of ${what}: expected "raw" or "qcow2", got ${JSON.stringify(o.format)}`);
  }
  const granularity = o.granularityBytes;
  if (granularity !== undefined) {
    if (typeof granularity !== "number") throw new TypeError(`Invalid granularityBytes of ${what}: expected a number`);
    if (!Number.isInteger(granularity) || granularity < MIN_GRANULARITY_BYTES || granularity > MAX_GRANULARITY_BYTES || (granularity & (granularity - 1)) !== 0) {
      throw new RangeError(`Invalid granularityBytes of ${what}: ${granularity} is not a power of two from 512 B to 64 MiB`);
    }
  }
  return {
    destination,
    ...(o.format === undefined ? {} : { format: o.format as "raw" | "qcow2" }),
    shallow: assertFlag(o.shallow, `shallow of ${what}`),
    reuseExisting: assertFlag(o.reuseExisting, `reuseExisting of ${what}`),
    bandwidth: assertBandwidth(o.bandwidth, "bandwidth"),
    ...(granularity === undefined ? {} : { granularityBytes: granularity as number }),
  };
}

/**
 * Checks the options of a block commit (the images are resolved against the chain later).
 *
 * @param disk The disk target, for messages.
 * @param options What the user passed.
 * @returns The checked options.
 * @throws {TypeError} For a malformed top or base, or a non-boolean `deleteCommitted`.
 * @throws {RangeError} For a bad bandwidth.
 * @example
 * ```ts
 * import { checkCommitOptions } from "./block_job_options.ts";
 * const checked = checkCommitOptions("vda", { top: "vda[1]", deleteCommitted: true });
 * if (checked.top !== "vda[1]" || !checked.deleteCommitted) throw new Error("unexpected");
 * ```
 */
export function checkCommitOptions(
  disk: string,
  options: BlockCommitOptions | undefined,
): { top?: string; base?: string; bandwidth: number; deleteCommitted: boolean } {
  const what = `block commit of disk "${disk}"`;
  const o = options === undefined ? {} : assertObject(options, `options of ${what}`);
  return {
    ...(o.top === undefined ? {} : { top: assertPath(o.top, `top of ${what}`) }),
    ...(o.base === undefined ? {} : { base: assertPath(o.base, `base of ${what}`) }),
    bandwidth: assertBandwidth(o.bandwidth, "bandwidth"),
    deleteCommitted: assertFlag(o.deleteCommitted, `deleteCommitted of ${what}`),
  };
}
