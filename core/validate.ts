/**
 * Argument checks shared by every public method, so each rule lives in one place.
 *
 * @module
 */

/** Options of {@linkcode assertName}. */
export interface NameRules {
  /** Longest allowed name in characters (default 255). */
  maxLength?: number;
}

/**
 * Checks an object name (domain, pool, volume, disk target): a non-empty string of at most
 * `maxLength` characters, with no `/`, no `\`, no control characters (NUL included), not `.` or `..`.
 * Such a name can never address anything outside its parent (a pool directory, a state directory).
 *
 * @param value The value to check.
 * @param what What it names, for the message (`"volume name"`).
 * @param rules Length limit.
 * @returns The name.
 * @throws {TypeError} When it is not such a string.
 * @example
 * ```ts
 * import { assertName } from "./validate.ts";
 * assertName("disk1.qcow2", "volume name");
 * let threw = false;
 * try { assertName("../etc", "volume name"); } catch (error) { threw = error instanceof TypeError; }
 * if (!threw) throw new Error("unexpected");
 * ```
 */
export function assertName(value: unknown, what: string, rules: NameRules = {}): string {
  const maxLength = rules.maxLength ?? 255;
  if (typeof value !== "string") throw new TypeError(`Invalid ${what}: expected a string, got ${typeof value}`);
  if (value.length === 0) throw new TypeError(`Invalid ${what}: it is empty`);
  if (value.length > maxLength) {
    throw new TypeError(`Invalid ${what} "${value.slice(0, 32)}...": longer than ${maxLength} characters`);
  }
  if (value === "." || value === "..") throw new TypeError(`Invalid ${what} "${value}": it names a directory`);
  if (/[\/\\]/.test(value)) throw new TypeError(`Invalid ${what} "${value}": it contains a path separator`);
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw new TypeError(`Invalid ${what} ${JSON.stringify(value)}: it contains a control character`);
  }
  return value;
}

/**
 * Checks that a value is a plain object (an options or config argument).
 *
 * @param value The value to check.
 * @param what What it is, for the message.
 * @returns The object.
 * @throws {TypeError} When it is not an object.
 * @example
 * ```ts
 * import { assertObject } from "./validate.ts";
 * assertObject({ name: "a" }, "pool config");
 * ```
 */
export function assertObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`Invalid ${what}: expected an object, got ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}`);
  }
  return value as Record<string, unknown>;
}
