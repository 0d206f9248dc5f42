import { describe, expect, it } from "vitest";
import { assert, assertEquals, assertRejects, ConformanceError, describeError } from "./assert.ts";
import { NotFoundError, StateError, VirtError } from "../../core/errors.ts";

function failureOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a failure");
}

describe("assert()", () => {
  it("passes on truthy and throws ConformanceError with the message on falsy", () => {
    assert(1, "one is truthy");
    const error = failureOf(() => assert(0, 'domain "d1" is running'));
    expect(error).toBeInstanceOf(ConformanceError);
    expect(error.name).toBe("ConformanceError");
    expect(error.message).toBe('Assertion failed: domain "d1" is running');
  });
});

describe("assertEquals()", () => {
  it("accepts deeply equal values", () => {
    assertEquals({ a: [1, { b: "x" }], c: new Uint8Array([1, 2]) }, { a: [1, { b: "x" }], c: new Uint8Array([1, 2]) });
    assertEquals(new Map([["k", [1]]]), new Map([["k", [1]]]));
    assertEquals(new Set([1, 2]), new Set([2, 1]));
    assertEquals(Number.NaN, Number.NaN);
    assertEquals({ a: 1, b: undefined }, { a: 1 });
    assertEquals(new Date(5), new Date(5));
  });

  it("names the path of the first difference", () => {
    const error = failureOf(() => assertEquals({ info: { state: "running" } }, { info: { state: "shutoff" } }, "info()"));
    expect(error).toBeInstanceOf(ConformanceError);
    expect(error.message).toBe('info(): values differ at .info.state: expected "shutoff", got "running"');
  });

  it("reports array length, byte and type differences", () => {
    expect(failureOf(() => assertEquals([1, 2], [1, 2, 3])).message).toContain("at .length: expected 3, got 2");
    expect(failureOf(() => assertEquals(new Uint8Array([1, 2, 3]), new Uint8Array([1, 9, 3]))).message)
      .toContain("at [byte 1]: expected 9, got 2");
    expect(failureOf(() => assertEquals(new Uint8Array(2), new Uint8Array(3))).message).toContain(".byteLength");
    expect(failureOf(() => assertEquals([1], { 0: 1 })).message).toContain("values differ");
    expect(failureOf(() => assertEquals(1, "1")).message).toContain('expected "1", got 1');
    expect(failureOf(() => assertEquals(new Map([["a", 1]]), new Map([["b", 1]]))).message).toContain("get(");
    expect(failureOf(() => assertEquals(new Set([1]), new Set([2]))).message).toContain("values differ");
    expect(failureOf(() => assertEquals(new Date(1), new Date(2))).message).toContain("values differ");
  });

  it("does not treat distinct objects with different prototypes as equal", () => {
    expect(() => assertEquals(new NotFoundError("domain", "a"), { objectType: "domain" })).toThrow(ConformanceError);
  });
});

describe("assertRejects()", () => {
  it("returns the error when the class and message match", async () => {
    const error = await assertRejects(() => Promise.reject(new NotFoundError("pool", "p1")), NotFoundError, '"p1"');
    expect(error.objectType).toBe("pool");
    const sync = await assertRejects(() => {
      throw new TypeError("bad name");
    }, TypeError);
    expect(sync.message).toBe("bad name");
    await assertRejects(() => Promise.reject(new StateError("x", { state: "running" })), VirtError);
  });

  it("fails when the call succeeds", async () => {
    const error = await assertRejects(() => assertRejects(() => Promise.resolve(42), StateError, undefined, "start()"), ConformanceError);
    expect(error.message).toBe("Expected start() to fail with StateError, but it succeeded with 42");
  });

  it("fails when the class differs, keeping the driver's error as cause", async () => {
    const thrown = new TypeError("nope");
    const error = await assertRejects(() => assertRejects(() => Promise.reject(thrown), RangeError), ConformanceError);
    expect(error.message).toBe('Expected the call to fail with RangeError, but it failed with TypeError: "nope"');
    expect(error.cause).toBe(thrown);
  });

  it("fails when the message lacks the text", async () => {
    const error = await assertRejects(
      () => assertRejects(() => Promise.reject(new RangeError("too big")), RangeError, "negative"),
      ConformanceError,
    );
    expect(error.message).toContain('includes "negative", got "too big"');
  });
});

describe("describeError()", () => {
  it("shows errors by name and message, other values as they are", () => {
    expect(describeError(new StateError("x", { state: "running" }))).toBe('StateError: "x"');
    expect(describeError("text")).toBe('"text"');
    expect(describeError(undefined)).toBe("undefined");
  });
});
