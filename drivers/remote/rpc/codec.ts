/**
 * Schema-driven XDR codecs: small combinators that describe one libvirt shape each (`struct`, `array`,
 * `optional`, ...) and both encode and decode it, so a message shape is written once and serves the
 * client and the daemon alike. The TypeScript type of a value follows from its codec
 * (`Infer<typeof codec>`).
 *
 * @example
 * ```ts
 * import { struct, string, int, encode, decode } from "./codec.ts";
 * const dom = struct({ name: string(64), id: int });
 * const bytes = encode(dom, { name: "test", id: -1 });
 * const back = decode(dom, bytes);
 * if (back.name !== "test" || back.id !== -1) throw new Error("unexpected");
 * ```
 *
 * @module
 */
import { XdrError, XdrReader, XdrWriter } from "./xdr.ts";

/** Encodes and decodes values of type `T`. */
export interface Codec<T> {
  /** Appends `value`. */
  encode(w: XdrWriter, value: T): void;
  /** Reads one value. */
  decode(r: XdrReader): T;
}

/** The value type of a codec. */
export type Infer<C> = C extends Codec<infer T> ? T : never;

/** Nothing on the wire (a `void` argument or reply). */
export const voidCodec: Codec<void> = { encode() {}, decode() {} };
/** XDR `int`. */
export const int: Codec<number> = { encode: (w, v) => w.int(v), decode: (r) => r.int() };
/** XDR `unsigned int`. */
export const uint: Codec<number> = { encode: (w, v) => w.uint(v), decode: (r) => r.uint() };
/** XDR `hyper`. */
export const hyper: Codec<number> = { encode: (w, v) => w.hyper(v), decode: (r) => r.hyper() };
/** XDR `unsigned hyper`. */
export const uhyper: Codec<number> = { encode: (w, v) => w.uhyper(v), decode: (r) => r.uhyper() };
/** XDR `unsigned hyper` as a bigint, for values that may exceed 2^53 (CPU time in ns). */
export const uhyperBig: Codec<bigint> = { encode: (w, v) => w.uhyperBig(v), decode: (r) => r.uhyperBig() };
/** XDR `double`. */
export const double: Codec<number> = { encode: (w, v) => w.double(v), decode: (r) => r.double() };
/** An `int` that must be 0 or 1. */
export const bool: Codec<boolean> = { encode: (w, v) => w.int(v ? 1 : 0), decode: (r) => r.bool() };

/**
 * A libvirt `char`/`unsigned char`/`short`: one 4-byte word holding a small integer.
 *
 * @param min Smallest value accepted.
 * @param max Largest value accepted.
 * @returns The codec.
 */
export function small(min: number, max: number): Codec<number> {
  return {
    encode(w, v) {
      if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`XDR small integer ${v} is outside ${min}..${max}`);
      w.int(v);
    },
    decode(r) {
      const at = r.offset;
      const v = r.int();
      if (v < min || v > max) throw new XdrError(`value ${v} at offset ${at} is outside ${min}..${max}`);
      return v;
    },
  };
}

/**
 * A string of at most `maxBytes` bytes.
 *
 * @param maxBytes The schema's bound.
 * @returns The codec.
 */
export function string(maxBytes: number): Codec<string> {
  return {
    encode(w, v) {
      if (typeof v !== "string") throw new TypeError(`XDR string expected, got ${typeof v}`);
      w.string(v);
    },
    decode: (r) => r.string(maxBytes),
  };
}

/**
 * Exactly `length` bytes, no length word (`opaque uuid[16]`). Decoded into a copy of its own.
 *
 * @param length Byte count.
 * @returns The codec.
 */
export function fixedOpaque(length: number): Codec<Uint8Array> {
  return {
    encode(w, v) {
      if (!(v instanceof Uint8Array) || v.length !== length) throw new RangeError(`XDR fixed opaque needs exactly ${length} bytes`);
      w.fixedOpaque(v);
    },
    // A copy: the input may be a receive buffer that the next socket read overwrites.
    decode: (r) => r.fixedOpaque(length).slice(),
  };
}

/**
 * Up to `maxBytes` bytes with a length word. Decoded into a copy of its own.
 *
 * @param maxBytes The schema's bound.
 * @returns The codec.
 */
export function opaque(maxBytes: number): Codec<Uint8Array> {
  return {
    encode(w, v) {
      if (v.length > maxBytes) throw new RangeError(`XDR opaque of ${v.length} bytes exceeds its bound ${maxBytes}`);
      w.opaque(v);
    },
    decode: (r) => r.opaque(maxBytes).slice(),
  };
}

/**
 * `T *x`: a 0/1 word, then the value when 1. `undefined` is absent.
 *
 * @param inner The value's codec.
 * @returns The codec.
 */
export function optional<T>(inner: Codec<T>): Codec<T | undefined> {
  return {
    encode(w, v) {
      if (v === undefined) return w.uint(0);
      w.uint(1);
      inner.encode(w, v);
    },
    decode: (r) => (r.bool() ? inner.decode(r) : undefined),
  };
}

/**
 * `T x<max>`: a count word (at most `max`), then the items.
 *
 * @param item The item codec.
 * @param max The schema's bound on the count.
 * @returns The codec.
 */
export function array<T>(item: Codec<T>, max: number): Codec<T[]> {
  return {
    encode(w, v) {
      if (v.length > max) throw new RangeError(`XDR array of ${v.length} items exceeds its bound ${max}`);
      w.uint(v.length);
      for (const x of v) item.encode(w, x);
    },
    decode(r) {
      const at = r.offset;
      const n = r.uint();
      if (n > max) throw new XdrError(`array at offset ${at} has ${n} items, more than its bound ${max}`);
      // Each item takes at least 4 bytes: a count beyond what is left is a lie, caught before allocating.
      if (n * 4 > r.remaining) throw new XdrError(`array at offset ${at} claims ${n} items but only ${r.remaining} bytes follow`);
      const out = new Array<T>(n);
      for (let i = 0; i < n; i++) out[i] = item.decode(r);
      return out;
    },
  };
}

/**
 * `char x<max>` as libvirt sends it: each character is its own 4-byte word, decoded to a string up to
 * the first NUL (the security model and label fields).
 *
 * @param max The schema's bound on the count.
 * @returns The codec.
 */
export function charArray(max: number): Codec<string> {
  const words = array(small(-128, 255), max);
  return {
    encode(w, v) {
      const codes = [...new TextEncoder().encode(v), 0];
      words.encode(w, codes);
    },
    decode(r) {
      const codes = words.decode(r);
      const nul = codes.indexOf(0);
      const bytes = Uint8Array.from(nul < 0 ? codes : codes.slice(0, nul), (c) => c & 0xff);
      return new TextDecoder().decode(bytes);
    },
  };
}

/** The codecs of a struct's fields, in wire order. */
export type Fields = Record<string, Codec<unknown>>;
/** The value of a struct described by `F`. */
export type StructOf<F extends Fields> = { [K in keyof F]: Infer<F[K]> };

/**
 * A struct: its fields one after another, in the order given.
 *
 * @param fields Field codecs, in wire order.
 * @returns The codec.
 */
export function struct<F extends Fields>(fields: F): Codec<StructOf<F>> {
  const entries = Object.entries(fields);
  return {
    encode(w, v) {
      if (typeof v !== "object" || v === null) throw new TypeError("XDR struct expected an object");
      for (const [name, codec] of entries) codec.encode(w, (v as Record<string, unknown>)[name]);
    },
    decode(r) {
      const out: Record<string, unknown> = {};
      for (const [name, codec] of entries) out[name] = codec.decode(r);
      return out as StructOf<F>;
    },
  };
}

/**
 * A discriminated union on an `int`: `arms` maps each discriminant to the codec of its value.
 *
 * @param arms Codec per discriminant.
 * @returns The codec of `{ type, value }`.
 */
export function union<T>(arms: Readonly<Record<number, Codec<T>>>): Codec<{ type: number; value: T }> {
  return {
    encode(w, v) {
      const arm = arms[v.type];
      if (!arm) throw new RangeError(`XDR union has no arm ${v.type}`);
      w.int(v.type);
      arm.encode(w, v.value);
    },
    decode(r) {
      const at = r.offset;
      const type = r.int();
      const arm = arms[type];
      if (!arm) throw new XdrError(`union at offset ${at} has unknown discriminant ${type}`);
      return { type, value: arm.decode(r) };
    },
  };
}

/**
 * Encodes one value into fresh bytes.
 *
 * @param codec Its codec.
 * @param value The value.
 * @returns A copy of the bytes.
 */
export function encode<T>(codec: Codec<T>, value: T): Uint8Array {
  const w = new XdrWriter();
  codec.encode(w, value);
  return w.finish().slice();
}

/**
 * Decodes exactly one value: trailing bytes are an error.
 *
 * @param codec Its codec.
 * @param bytes The bytes.
 * @param what Name used in errors.
 * @returns The value.
 * @throws {XdrError} When the bytes do not match.
 */
export function decode<T>(codec: Codec<T>, bytes: Uint8Array, what = "the value"): T {
  const r = new XdrReader(bytes);
  const v = codec.decode(r);
  r.end(what);
  return v;
}
