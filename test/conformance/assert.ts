/**
 * The conformance kit's own assertions. Cases use these instead of a test library's, so they run under
 * any runner (vitest, `Deno.test`, `node:test`, a plain script); a failure is a {@linkcode ConformanceError}
 * whose message says what the driver did and what the contract wanted.
 *
 * @module
 */

/**
 * A conformance case found a driver behaving against the contract.
 *
 * @example
 * ```ts
 * import { ConformanceError } from "virtkit/testing";
 * const error = new ConformanceError("domain list: expected 1 entry, got 0");
 * if (error.name !== "ConformanceError") throw new Error("unexpected");
 * ```
 */
export class ConformanceError extends Error {
  /**
   * Makes a conformance failure.
   *
   * @param message What was expected and what happened.
   * @param options The error the driver threw, when there was one.
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConformanceError";
  }
}

/**
 * Throws a {@linkcode ConformanceError} unless `condition` is truthy.
 *
 * @param condition What must hold.
 * @param message What it means, naming the object (`'domain "web1" is running after start()'`).
 * @throws {ConformanceError} When the condition is falsy.
 * @example
 * ```ts
 * import { assert } from "virtkit/testing";
 * assert(1 + 1 === 2, "arithmetic works");
 * ```
 */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new ConformanceError(`Assertion failed: ${message}`);
}

/**
 * Deep equality: primitives by `Object.is`, arrays and typed arrays element by element, plain objects by
 * their own enumerable keys (a key holding `undefined` equals a missing key), `Map`, `Set` and `Date`
 * by content.
 *
 * @param actual What the driver gave.
 * @param expected What the contract wants.
 * @param message Context for the failure message.
 * @throws {ConformanceError} Naming the first difference and its path.
 * @example
 * ```ts
 * import { assertEquals } from "virtkit/testing";
 * assertEquals({ state: "running", disks: ["vda"] }, { state: "running", disks: ["vda"] });
 * let threw = false;
 * try { assertEquals([1, 2], [1, 3], "list"); } catch { threw = true; }
 * if (!threw) throw new Error("unexpected");
 * ```
 */
export function assertEquals(actual: unknown, expected: unknown, message?: string): void {
  const difference = findDifference(actual, expected, "");
  if (difference === undefined) return;
  const where = difference.path === "" ? "" : ` at ${difference.path}`;
  const prefix = message ? `${message}: ` : "";
  throw new ConformanceError(
    `${prefix}values differ${where}: expected ${show(difference.expected)}, got ${show(difference.actual)}`,
  );
}

/** A class an error is checked against (`StateError`, `TypeError`, ...). */
// deno-lint-ignore no-explicit-any
export type ErrorClass<E extends Error = Error> = abstract new (...args: any[]) => E;

/**
 * Calls `fn` and checks that it rejects (or throws) with an instance of `ErrorClass`.
 *
 * @typeParam E The expected error type.
 * @param fn The call that must fail.
 * @param ErrorClass The class the error must be an instance of.
 * @param messageIncludes Text the error message must contain.
 * @param context What was attempted, for the failure message (`'start() on running domain "d1"'`).
 * @returns The error, so the caller can check its fields.
 * @throws {ConformanceError} When `fn` succeeds, or fails with another class or message.
 * @example
 * ```ts
 * import { assertRejects } from "virtkit/testing";
 * const error = await assertRejects(() => Promise.reject(new RangeError("too big")), RangeError, "big");
 * if (error.message !== "too big") throw new Error("unexpected");
 * ```
 */
export async function assertRejects<E extends Error>(
  fn: () => unknown,
  ErrorClass: ErrorClass<E>,
  messageIncludes?: string,
  context?: string,
): Promise<E> {
  const what = context ?? "the call";
  let value: unknown;
  try {
    value = await fn();
  } catch (error) {
    if (!(error instanceof ErrorClass)) {
      throw new ConformanceError(
        `Expected ${what} to fail with ${ErrorClass.name}, but it failed with ${describeError(error)}`,
        { cause: error },
      );
    }
    if (messageIncludes !== undefined && !error.message.includes(messageIncludes)) {
      throw new ConformanceError(
        `Expected ${what} to fail with a ${ErrorClass.name} whose message includes ${JSON.stringify(messageIncludes)}, ` +
          `got ${JSON.stringify(error.message)}`,
        { cause: error },
      );
    }
    return error;
  }
  throw new ConformanceError(`Expected ${what} to fail with ${ErrorClass.name}, but it succeeded with ${show(value)}`);
}

/**
 * A short description of a thrown value for failure messages.
 *
 * @param error Anything that was thrown.
 * @returns `Name: message` for errors, the value otherwise.
 * @example
 * ```ts
 * import { describeError } from "virtkit/testing";
 * if (describeError(new TypeError("bad")) !== 'TypeError: "bad"') throw new Error("unexpected");
 * ```
 */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${JSON.stringify(error.message)}`;
  return show(error);
}

interface Difference {
  path: string;
  actual: unknown;
  expected: unknown;
}

function findDifference(actual: unknown, expected: unknown, path: string): Difference | undefined {
  if (Object.is(actual, expected)) return undefined;
  const mismatch = { path, actual, expected };
  if (typeof actual !== "object" || typeof expected !== "object" || actual === null || expected === null) {
    return mismatch;
  }
  if (Object.getPrototypeOf(actual) !== Object.getPrototypeOf(expected)) return mismatch;
  if (actual instanceof Date) return actual.getTime() === (expected as Date).getTime() ? undefined : mismatch;
  if (ArrayBuffer.isView(actual)) return bytesDifference(actual, expected as ArrayBufferView, path);
  if (Array.isArray(actual)) {
    const other = expected as unknown[];
    if (actual.length !== other.length) {
      return { path: `${path}.length`, actual: actual.length, expected: other.length };
    }
    for (let i = 0; i < actual.length; i++) {
      const found = findDifference(actual[i], other[i], `${path}[${i}]`);
      if (found) return found;
    }
    return undefined;
  }
  if (actual instanceof Map) return mapDifference(actual, expected as Map<unknown, unknown>, path);
  if (actual instanceof Set) {
    const other = expected as Set<unknown>;
    if (actual.size !== other.size) return { path: `${path}.size`, actual: actual.size, expected: other.size };
    for (const item of actual) if (!other.has(item)) return mismatch;
    return undefined;
  }
  const a = actual as Record<string, unknown>;
  const e = expected as Record<string, unknown>;
  const keys = new Set([...Object.keys(a), ...Object.keys(e)]);
  for (const key of keys) {
    const found = findDifference(a[key], e[key], `${path}.${key}`);
    if (found) return found;
  }
  return undefined;
}

function mapDifference(actual: Map<unknown, unknown>, expected: Map<unknown, unknown>, path: string): Difference | undefined {
  if (actual.size !== expected.size) return { path: `${path}.size`, actual: actual.size, expected: expected.size };
  for (const [key, value] of actual) {
    if (!expected.has(key)) return { path: `${path}.get(${show(key)})`, actual: value, expected: undefined };
    const found = findDifference(value, expected.get(key), `${path}.get(${show(key)})`);
    if (found) return found;
  }
  return undefined;
}

function bytesDifference(actual: ArrayBufferView, expected: ArrayBufferView, path: string): Difference | undefined {
  const a = new Uint8Array(actual.buffer, actual.byteOffset, actual.byteLength);
  const e = new Uint8Array(expected.buffer, expected.byteOffset, expected.byteLength);
  if (a.length !== e.length) return { path: `${path}.byteLength`, actual: a.length, expected: e.length };
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) return { path: `${path}[byte ${i}]`, actual: a[i], expected: e[i] };
  }
  return undefined;
}

function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "function") return `function ${value.name || "(anonymous)"}`;
  if (value instanceof Error) return describeError(value);
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${value.byteLength} bytes)`;
  if (value instanceof Map) return `Map(${value.size})`;
  if (value instanceof Set) return `Set(${value.size})`;
  if (typeof value === "object" && value !== null) {
    try {
      const text = JSON.stringify(value);
      return text.length > 300 ? `${text.slice(0, 300)}...` : text;
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
  return String(value);
}
