/**
 * Byte units. Every size in virtkit is a number of bytes and every bandwidth bytes per second; these
 * helpers only make literals readable and parse human input.
 *
 * @module
 */

/** The largest byte count virtkit accepts: sizes stay exact integers in a JS number. */
export const MAX_BYTES: number = Number.MAX_SAFE_INTEGER;

/**
 * `n` kibibytes in bytes.
 *
 * @param n How many KiB.
 * @returns Bytes.
 * @example
 * ```ts
 * import { KiB } from "virtkit";
 * if (KiB(4) !== 4096) throw new Error("unexpected");
 * ```
 */
export function KiB(n = 1): number {
  return n * 1024;
}

/**
 * `n` mebibytes in bytes.
 *
 * @param n How many MiB.
 * @returns Bytes.
 * @example
 * ```ts
 * import { MiB } from "virtkit";
 * if (MiB(100) !== 104857600) throw new Error("unexpected");
 * ```
 */
export function MiB(n = 1): number {
  return n * 1024 * 1024;
}

/**
 * `n` gibibytes in bytes.
 *
 * @param n How many GiB.
 * @returns Bytes.
 * @example
 * ```ts
 * import { GiB } from "virtkit";
 * if (GiB(1) !== 1073741824) throw new Error("unexpected");
 * ```
 */
export function GiB(n = 1): number {
  return n * 1024 ** 3;
}

/**
 * `n` tebibytes in bytes.
 *
 * @param n How many TiB.
 * @returns Bytes.
 * @example
 * ```ts
 * import { TiB } from "virtkit";
 * if (TiB(1) !== 1099511627776) throw new Error("unexpected");
 * ```
 */
export function TiB(n = 1): number {
  return n * 1024 ** 4;
}

const SUFFIXES: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
  p: 1024 ** 5,
  pb: 1000 ** 5,
  pib: 1024 ** 5,
  byte: 1,
  bytes: 1,
  e: 1024 ** 6,
  eb: 1000 ** 6,
  eib: 1024 ** 6,
};

/**
 * The factor of a byte unit, as `parseBytes` and libvirt's `unit` attributes spell them, case-insensitive:
 * `b`/`byte`/`bytes`, powers of 1024 (`k`, `KiB`, `M`, `MiB`, ... `E`, `EiB`) and of 1000 (`KB`, `MB`, ...
 * `EB`). The empty unit is 1.
 *
 * @param unit The unit.
 * @returns Bytes per unit, or `undefined` for an unknown unit.
 * @example
 * ```ts
 * import { byteUnitFactor } from "virtkit";
 * if (byteUnitFactor("KiB") !== 1024 || byteUnitFactor("MB") !== 1e6 || byteUnitFactor("parsec") !== undefined) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function byteUnitFactor(unit: string): number | undefined {
  const key = unit.toLowerCase();
  return Object.hasOwn(SUFFIXES, key) ? SUFFIXES[key] : undefined;
}

/**
 * Parses a human byte count the way `qemu-img` and `virsh` read them: `"100M"` and `"100MiB"` are
 * binary (1024-based), `"100MB"` is decimal, a bare number is bytes.
 *
 * @param text Such as `"512"`, `"1.5G"`, `"100MiB"`, `"10 GB"`.
 * @returns A whole number of bytes.
 * @throws {TypeError} When the text is not a byte count.
 * @throws {RangeError} When the result is negative, fractional or above {@linkcode MAX_BYTES}.
 * @example
 * ```ts
 * import { parseBytes } from "virtkit";
 * if (parseBytes("100M") !== 104857600) throw new Error("unexpected");
 * if (parseBytes("1.5KiB") !== 1536) throw new Error("unexpected");
 * ```
 */
export function parseBytes(text: string): number {
  if (typeof text !== "string") throw new TypeError(`Cannot parse bytes: expected a string, got ${typeof text}`);
  const match = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!match) throw new TypeError(`Cannot parse bytes: "${text}" is not a byte count like "512", "100M" or "1.5GiB"`);
  const factor = byteUnitFactor(match[2]!);
  if (factor === undefined) {
    throw new TypeError(`Cannot parse bytes: unknown unit "${match[2]}" in "${text}"`);
  }
  const value = Number(match[1]) * factor;
  if (!Number.isInteger(value)) throw new RangeError(`Cannot parse bytes: "${text}" is not a whole number of bytes`);
  if (value > MAX_BYTES) throw new RangeError(`Cannot parse bytes: "${text}" is above ${MAX_BYTES}`);
  return value;
}

/**
 * Formats a byte count with a binary unit and up to two decimals: `formatBytes(1536)` is `"1.5 KiB"`.
 *
 * @param bytes A byte count.
 * @returns Human-readable text.
 * @example
 * ```ts
 * import { formatBytes } from "virtkit";
 * if (formatBytes(104857600) !== "100 MiB") throw new Error("unexpected");
 * ```
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = Math.abs(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const rounded = Math.round(value * 100) / 100;
  return `${bytes < 0 ? "-" : ""}${rounded} ${units[unit]}`;
}

/**
 * Checks a byte count argument: a whole number from 0 to {@linkcode MAX_BYTES}.
 *
 * @param value The value to check.
 * @param what Its name in the error message (`"capacityBytes"`).
 * @returns The value, typed as a number.
 * @throws {TypeError} When it is not a number.
 * @throws {RangeError} When it is negative, fractional, NaN, infinite or too large.
 * @example
 * ```ts
 * import { assertBytes } from "virtkit";
 * let threw = false;
 * try { assertBytes(-1, "capacityBytes"); } catch (error) { threw = error instanceof RangeError; }
 * if (!threw) throw new Error("unexpected");
 * ```
 */
export function assertBytes(value: unknown, what: string): number {
  if (typeof value !== "number") throw new TypeError(`Invalid ${what}: expected a number of bytes, got ${typeof value}`);
  if (!Number.isInteger(value) || value < 0 || value > MAX_BYTES) {
    throw new RangeError(`Invalid ${what}: ${value} is not a whole number of bytes from 0 to ${MAX_BYTES}`);
  }
  return value;
}

/**
 * Checks a bandwidth argument in bytes per second; `0` and `undefined` mean unlimited.
 *
 * @param value The value to check.
 * @param what Its name in the error message.
 * @returns The bandwidth (0 for unlimited).
 * @throws {TypeError} When it is not a number.
 * @throws {RangeError} When it is negative, fractional, NaN, infinite or too large.
 * @example
 * ```ts
 * import { assertBandwidth, MiB } from "virtkit";
 * if (assertBandwidth(undefined, "bandwidth") !== 0) throw new Error("unexpected");
 * if (assertBandwidth(MiB(8), "bandwidth") !== 8388608) throw new Error("unexpected");
 * ```
 */
export function assertBandwidth(value: unknown, what = "bandwidth"): number {
  if (value === undefined) return 0;
  return assertBytes(value, `${what} (bytes per second)`);
}
