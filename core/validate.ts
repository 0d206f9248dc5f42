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
  const problem = nameProblem(value, maxLength);
  if (problem === undefined) return value;
  const shown = value.length > maxLength ? ` "${value.slice(0, 32)}..."` : value === "" ? "" : ` ${JSON.stringify(value)}`;
  throw new TypeError(`Invalid ${what}${shown}: ${problem}`);
}

/**
 * What is wrong with an object name, by the rules of {@linkcode assertName} (one set of rules for the
 * public methods and the config schemas).
 *
 * @param value The name.
 * @param maxLength Longest allowed, in characters.
 * @returns The broken rule (`"it contains a path separator"`), or undefined for a good name.
 * @example
 * ```ts
 * import { nameProblem } from "./validate.ts";
 * if (nameProblem("vda", 32) !== undefined || nameProblem("a/b", 32) !== "it contains a path separator") throw new Error("unexpected");
 * ```
 */
export function nameProblem(value: string, maxLength: number): string | undefined {
  if (value.length === 0) return "it is empty";
  if (value.length > maxLength) return `it is longer than ${maxLength} characters`;
  if (value === "." || value === "..") return "it names a directory";
  if (value.includes("/") || value.includes("\\")) return "it contains a path separator";
  if (hasControlCharacter(value)) return "it contains a control character";
  return undefined;
}

/**
 * Whether a string holds a control character (U+0000 to U+001F, or U+007F), NUL included.
 *
 * @param value The string.
 * @returns True when it has one.
 * @example
 * ```ts
 * import { hasControlCharacter } from "./validate.ts";
 * if (!hasControlCharacter("a\u0000b") || hasControlCharacter("/var/lib/images")) throw new Error("unexpected");
 * ```
 */
export function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
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
