/**
 * Values on the `virtkit` command line: sizes (`100M`, `1G`, `512KiB`) and bandwidths (`64` = 64 MiB/s as
 * in virsh, `64M`, `64MiB/s`, or bytes per second with `--bytes`). Bad values are refused with a
 * {@linkcode UsageError} before anything happens.
 *
 * @module
 */
import { MAX_BYTES, parseBytes, TiB } from "../core/units.ts";
import { UsageError } from "./usage.ts";

/** The highest cap accepted: 1 TiB/s is beyond any disk, so more is a typo (omit the option for no cap). */
export const MAX_BANDWIDTH_BYTES_PER_SECOND: number = TiB(1);

function parsed(text: string, option: string): number {
  try {
    return parseBytes(text);
  } catch (error) {
    const why = error instanceof Error ? error.message.replace(/^Cannot parse bytes: /, "") : String(error);
    throw new UsageError(`Invalid ${option} "${text}": ${text.trim().startsWith("-") ? "it is negative" : why}`);
  }
}

/**
 * Parses a size: `100M`, `1G`, `512KiB`, `4096` (bytes); binary units as in qemu-img.
 *
 * @param text The value typed.
 * @param option Its name in the message (`"SIZE"`, `"--size"`).
 * @param options `min`: the smallest size accepted (default 0).
 * @returns Bytes.
 * @throws {UsageError} For a malformed, negative, fractional or too large size.
 * @example
 * ```ts
 * import { parseSizeArg } from "./values.ts";
 * if (parseSizeArg("1G", "SIZE") !== 1073741824) throw new Error("unexpected");
 * let refused = false;
 * try { parseSizeArg("-5M", "SIZE"); } catch { refused = true; }
 * if (!refused) throw new Error("a negative size was accepted");
 * ```
 */
export function parseSizeArg(text: string, option: string, options: { min?: number } = {}): number {
  const bytes = parsed(text, option);
  const min = options.min ?? 0;
  if (bytes < min) throw new UsageError(`Invalid ${option} "${text}": it must be at least ${min} bytes`);
  if (bytes > MAX_BYTES) throw new UsageError(`Invalid ${option} "${text}": it is above ${MAX_BYTES} bytes`);
  return bytes;
}

/**
 * Parses a bandwidth the way virsh reads `--bandwidth`: a bare number is MiB/s (bytes/s with
 * `bytes: true`); a unit makes it explicit (`64M`, `64MiB/s`, `100MB/s`, `1G`). `0` lifts the cap.
 *
 * @param text The value typed.
 * @param options `bytes`: a bare number is bytes per second (virsh's `--bytes`).
 * @returns Bytes per second (0 = unlimited).
 * @throws {UsageError} For a malformed or negative value, or one above {@linkcode MAX_BANDWIDTH_BYTES_PER_SECOND}.
 * @example
 * ```ts
 * import { parseBandwidthArg } from "./values.ts";
 * if (parseBandwidthArg("64") !== 64 * 1024 * 1024) throw new Error("a bare number is MiB/s");
 * if (parseBandwidthArg("64MiB/s") !== 64 * 1024 * 1024) throw new Error("unexpected");
 * if (parseBandwidthArg("4096", { bytes: true }) !== 4096) throw new Error("--bytes makes it bytes/s");
 * ```
 */
export function parseBandwidthArg(text: string, options: { bytes?: boolean } = {}): number {
  const trimmed = text.trim().replace(/\/s$/i, "").replace(/ps$/i, "");
  const bare = /^\d+(?:\.\d+)?$/.test(trimmed);
  const value = bare && !options.bytes ? `${trimmed}MiB` : trimmed;
  const bytesPerSecond = parsed(value, `--bandwidth`).valueOf();
  if (bytesPerSecond > MAX_BANDWIDTH_BYTES_PER_SECOND) {
    throw new UsageError(`Invalid --bandwidth "${text}": above 1 TiB/s; leave --bandwidth out for no cap`);
  }
  return bytesPerSecond;
}

/**
 * Parses a whole number option (`--since 42`).
 *
 * @param text The value typed.
 * @param option Its name in the message.
 * @returns The number.
 * @throws {UsageError} Unless it is a whole number from 0 to 2^53-1.
 * @example
 * ```ts
 * import { parseCountArg } from "./values.ts";
 * if (parseCountArg("42", "--since") !== 42) throw new Error("unexpected");
 * ```
 */
export function parseCountArg(text: string, option: string): number {
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`Invalid ${option} "${text}": expected a whole number`);
  }
  return Number(text);
}
