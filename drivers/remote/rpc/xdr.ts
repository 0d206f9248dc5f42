/**
 * XDR (RFC 4506) primitives over a `DataView`: a growable writer and a bounds-checked reader. Every
 * scalar takes 4 bytes (8 for hypers), strings and variable opaques are a length word plus bytes padded
 * with zeros to a multiple of 4. The reader rejects what a careful peer never sends (short input,
 * non-zero padding, lengths over their bound, booleans other than 0/1) with an {@linkcode XdrError}.
 *
 * Hand-written rather than `@stellar/js-xdr`: the few shapes libvirt needs fit in this file and the
 * schema combinators of `codec.ts`, it runs on Node 20 without the library's `node >= 22` engine
 * warning, and it is faster on the hot path (machine-facts §7: 100k round trips of a domain
 * reference 0.29 s with js-xdr against 0.05 s for a DataView codec; `bench/remote.bench.ts` measures ours).
 *
 * @module
 */
import { ProtocolError } from "./protocol_error.ts";
import { SHORT_STRING_MAX_BYTES, shortAsciiString, uuidText } from "./short_strings.ts";

/** A value that does not follow XDR, or breaks a bound of the schema. */
export class XdrError extends ProtocolError {
  /**
   * @param message What was wrong, and where.
   */
  constructor(message: string) {
    super(`Malformed XDR: ${message}`);
    this.name = "XdrError";
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const PAD = [0, 3, 2, 1] as const;

/**
 * Writes XDR into a buffer that grows as needed.
 *
 * @example
 * ```ts
 * import { XdrWriter } from "./xdr.ts";
 * const w = new XdrWriter();
 * w.int(-1); w.string("ab");
 * const bytes = w.finish();
 * if (bytes.length !== 12 || bytes[3] !== 0xff || bytes[8] !== 0x61 || bytes[10] !== 0) throw new Error("unexpected");
 * ```
 */
export class XdrWriter {
  #buf: Uint8Array;
  #view: DataView;
  #pos: number;

  /**
   * @param initialBytes Starting capacity.
   * @param reserveBytes Bytes left zero at the start for a header the caller fills in later.
   */
  constructor(initialBytes = 256, reserveBytes = 0) {
    this.#buf = new Uint8Array(Math.max(initialBytes, reserveBytes + 16));
    this.#view = new DataView(this.#buf.buffer);
    this.#pos = reserveBytes;
  }

  /** Starts over at offset 0, keeping the buffer (shrunk back when one large value had grown it). */
  reset(): void {
    this.#pos = 0;
    if (this.#buf.length > 1024 * 1024) {
      this.#buf = new Uint8Array(4096);
      this.#view = new DataView(this.#buf.buffer);
    }
  }

  /** Bytes written so far (including any reserved prefix). */
  get length(): number {
    return this.#pos;
  }

  #room(bytes: number): void {
    const need = this.#pos + bytes;
    if (need <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  /** A signed 32-bit integer. */
  int(value: number): void {
    if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) throw new RangeError(`XDR int out of range: ${value}`);
    this.#room(4);
    this.#view.setInt32(this.#pos, value);
    this.#pos += 4;
  }

  /** An unsigned 32-bit integer. */
  uint(value: number): void {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`XDR unsigned int out of range: ${value}`);
    this.#room(4);
    this.#view.setUint32(this.#pos, value);
    this.#pos += 4;
  }

  /** A signed 64-bit integer (a safe JS integer). */
  hyper(value: number): void {
    if (!Number.isSafeInteger(value)) throw new RangeError(`XDR hyper out of the safe integer range: ${value}`);
    this.#room(8);
    this.#view.setBigInt64(this.#pos, BigInt(value));
    this.#pos += 8;
  }

  /** An unsigned 64-bit integer (a safe, non-negative JS integer). */
  uhyper(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`XDR unsigned hyper out of range: ${value}`);
    this.#room(8);
    this.#view.setUint32(this.#pos, Math.floor(value / 0x100000000));
    this.#view.setUint32(this.#pos + 4, value >>> 0);
    this.#pos += 8;
  }

  /** An unsigned 64-bit integer of any size. */
  uhyperBig(value: bigint): void {
    if (typeof value !== "bigint" || value < 0n || value > 0xffffffffffffffffn) throw new RangeError(`XDR unsigned hyper out of range: ${value}`);
    this.#room(8);
    this.#view.setBigUint64(this.#pos, value);
    this.#pos += 8;
  }

  /** A double-precision float. */
  double(value: number): void {
    this.#room(8);
    this.#view.setFloat64(this.#pos, value);
    this.#pos += 8;
  }

  /** Raw bytes followed by zero padding to a multiple of 4 (fixed-length opaque). */
  fixedOpaque(bytes: Uint8Array): void {
    const pad = PAD[bytes.length & 3]!;
    this.#room(bytes.length + pad);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
    for (let i = 0; i < pad; i++) this.#buf[this.#pos++] = 0;
  }

  /** Raw bytes with no padding (the data of a STREAM frame). */
  raw(bytes: Uint8Array): void {
    this.#room(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  /** A length word, then the bytes, padded (variable-length opaque). */
  opaque(bytes: Uint8Array): void {
    this.uint(bytes.length);
    this.fixedOpaque(bytes);
  }

  /** A UTF-8 string: length word, bytes, padding. */
  string(value: string): void {
    // Fast path for ASCII, the common case (names, paths, XML).
    const n = value.length;
    let ascii = true;
    for (let i = 0; i < n; i++) if (value.charCodeAt(i) > 0x7f) { ascii = false; break; }
    if (!ascii) return this.opaque(encoder.encode(value));
    this.uint(n);
    const pad = PAD[n & 3]!;
    this.#room(n + pad);
    for (let i = 0; i < n; i++) this.#buf[this.#pos++] = value.charCodeAt(i);
    for (let i = 0; i < pad; i++) this.#buf[this.#pos++] = 0;
  }

  /** Overwrites a big-endian u32 at `offset` (a header field written after the body). */
  patchUint(offset: number, value: number): void {
    this.#view.setUint32(offset, value);
  }

  /** The bytes written, as a view of the internal buffer (valid until the next write). */
  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#pos);
  }
}

/**
 * Reads XDR from bytes, checking every length against what is left and every bound given.
 *
 * @example
 * ```ts
 * import { XdrReader } from "./xdr.ts";
 * const r = new XdrReader(new Uint8Array([0, 0, 0, 2, 0x68, 0x69, 0, 0]));
 * if (r.string(10) !== "hi" || r.remaining !== 0) throw new Error("unexpected");
 * ```
 */
export class XdrReader {
  readonly #bytes: Uint8Array;
  #dataView: DataView | undefined;
  #pos: number;
  readonly #end: number;

  /**
   * @param bytes The encoded data.
   */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#pos = 0;
    this.#end = bytes.byteLength;
  }

  /** Made on the first 64-bit value only: most replies are 32-bit words and strings, read byte-wise. */
  get #view(): DataView {
    return (this.#dataView ??= new DataView(this.#bytes.buffer, this.#bytes.byteOffset, this.#bytes.byteLength));
  }

  #word(): number {
    const b = this.#bytes;
    const p = this.#pos;
    this.#pos = p + 4;
    return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
  }

  /** Bytes not yet read. */
  get remaining(): number {
    return this.#end - this.#pos;
  }

  /** Offset of the next byte. */
  get offset(): number {
    return this.#pos;
  }

  #need(bytes: number, what: string): void {
    if (bytes > this.#end - this.#pos) {
      throw new XdrError(`${what} needs ${bytes} bytes at offset ${this.#pos}, only ${this.#end - this.#pos} left`);
    }
  }

  /** A signed 32-bit integer. */
  int(): number {
    this.#need(4, "int");
    return this.#word();
  }

  /** An unsigned 32-bit integer. */
  uint(): number {
    this.#need(4, "unsigned int");
    return this.#word() >>> 0;
  }

  /** A boolean (an int that must be 0 or 1). */
  bool(): boolean {
    const at = this.#pos;
    const v = this.int();
    if (v !== 0 && v !== 1) throw new XdrError(`boolean at offset ${at} is ${v}, not 0 or 1`);
    return v === 1;
  }

  /** A signed 64-bit integer; beyond the safe integer range is an error rather than a silent rounding. */
  hyper(): number {
    this.#need(8, "hyper");
    const v = this.#view.getBigInt64(this.#pos);
    this.#pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new XdrError(`hyper ${v} at offset ${this.#pos - 8} is beyond the safe integer range`);
    }
    return Number(v);
  }

  /** An unsigned 64-bit integer, as a safe JS integer. */
  uhyper(): number {
    this.#need(8, "unsigned hyper");
    const hi = this.#view.getUint32(this.#pos);
    const lo = this.#view.getUint32(this.#pos + 4);
    this.#pos += 8;
    if (hi > 0x1fffff) throw new XdrError(`unsigned hyper at offset ${this.#pos - 8} is beyond the safe integer range`);
    return hi * 0x100000000 + lo;
  }

  /** An unsigned 64-bit integer of any size (CPU time in ns outgrows the safe integers after 104 days). */
  uhyperBig(): bigint {
    this.#need(8, "unsigned hyper");
    const v = this.#view.getBigUint64(this.#pos);
    this.#pos += 8;
    return v;
  }

  /** A double-precision float. */
  double(): number {
    this.#need(8, "double");
    const v = this.#view.getFloat64(this.#pos);
    this.#pos += 8;
    return v;
  }

  /**
   * `length` raw bytes and their padding (which must be zero). A view into the input, not a copy: valid
   * only as long as the input is (the codecs of `codec.ts` copy what they return).
   */
  fixedOpaque(length: number): Uint8Array {
    const pad = PAD[length & 3]!;
    // The message only when it fails: a template literal here was built for every string read.
    if (this.#pos + length + pad > this.#end) this.#need(length + pad, `opaque of ${length} bytes`);
    const out = this.#bytes.subarray(this.#pos, this.#pos + length);
    this.#pos += length;
    for (let i = 0; i < pad; i++) {
      if (this.#bytes[this.#pos + i] !== 0) throw new XdrError(`non-zero padding byte at offset ${this.#pos + i}`);
    }
    this.#pos += pad;
    return out;
  }

  /** A length word (at most `maxBytes`), then that many bytes. A view into the input. */
  opaque(maxBytes: number): Uint8Array {
    const at = this.#pos;
    const n = this.uint();
    if (n > maxBytes) throw new XdrError(`opaque at offset ${at} has ${n} bytes, more than its bound ${maxBytes}`);
    return this.fixedOpaque(n);
  }

  /** A UTF-8 string of at most `maxBytes` bytes. */
  string(maxBytes: number): string {
    const at = this.#pos;
    // Short ASCII (names, disk targets): read in place through the decode cache, no view, no new string.
    if (this.#end - at >= 4) {
      const n = this.#word() >>> 0;
      const pad = PAD[n & 3]!;
      const p = this.#pos;
      if (n <= SHORT_STRING_MAX_BYTES && n <= maxBytes && p + n + pad <= this.#end) {
        const b = this.#bytes;
        let plain = true;
        for (let i = 0; i < n; i++) if (b[p + i]! > 0x7f) { plain = false; break; }
        for (let i = 0; i < pad; i++) if (b[p + n + i] !== 0) plain = false;
        if (plain) {
          this.#pos = p + n + pad;
          return shortAsciiString(b, p, n);
        }
      }
      // Anything else (and every error) the general way, from the length word again.
      this.#pos = at;
    }
    const bytes = this.opaque(maxBytes);
    let ascii = true;
    for (let i = 0; i < bytes.length; i++) if (bytes[i]! > 0x7f) { ascii = false; break; }
    if (ascii) {
      // String.fromCharCode over chunks is much faster than TextDecoder for short ASCII names.
      let out = "";
      for (let i = 0; i < bytes.length; i += 8192) out += String.fromCharCode(...bytes.subarray(i, i + 8192));
      return out;
    }
    try {
      return decoder.decode(bytes);
    } catch {
      throw new XdrError(`string at offset ${at} is not valid UTF-8`);
    }
  }

  /**
   * A `remote_uuid` (16 bytes) as its lower-case 8-4-4-4-12 text, through the decode cache of
   * `short_strings.ts`: every domain reference carries one.
   */
  uuid(): string {
    if (this.#pos + 16 > this.#end) this.#need(16, "opaque of 16 bytes");
    const text = uuidText(this.#bytes, this.#pos);
    this.#pos += 16;
    return text;
  }

  /** Throws unless every byte was read (a reply with trailing bytes is not what the schema says). */
  end(what: string): void {
    if (this.#pos !== this.#end) throw new XdrError(`${this.#end - this.#pos} bytes left over after ${what}`);
  }
}
