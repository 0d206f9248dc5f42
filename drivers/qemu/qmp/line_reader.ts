/**
 * Line framing for QMP: bytes in, complete lines out, whatever the chunking. A line may arrive in many
 * chunks (a 200 KiB `query-named-block-nodes` reply comes in 64 KiB socket reads) and a chunk may hold
 * many lines (QEMU writes a burst of events at once).
 *
 * @module
 */
import { QmpProtocolError } from "./errors.ts";

/** Default longest line accepted: 16 MiB, far above any QMP reply yet bounded. */
export const DEFAULT_MAX_LINE_BYTES: number = 16 * 1024 * 1024;

/** Options of {@linkcode LineSplitter}. */
export interface LineSplitterOptions {
  /** Longest line accepted, in bytes without its terminator (default {@linkcode DEFAULT_MAX_LINE_BYTES}). */
  maxLineBytes?: number;
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/**
 * Splits a byte stream into UTF-8 lines ended by `\n` (a `\r` before it is dropped; blank lines are
 * skipped). Memory is bounded by `maxLineBytes`: an endless line is refused as soon as it passes the
 * limit, not when its end finally arrives.
 *
 * @example
 * ```ts
 * import { LineSplitter } from "./line_reader.ts";
 * const splitter = new LineSplitter();
 * const bytes = new TextEncoder().encode('{"a":1}\r\n{"b"');
 * const first = splitter.push(bytes);
 * const second = splitter.push(new TextEncoder().encode(':2}\r\n'));
 * if (first.join() !== '{"a":1}' || second.join() !== '{"b":2}') throw new Error("unexpected");
 * ```
 */
export class LineSplitter {
  readonly #maxLineBytes: number;
  readonly #decoder = new TextDecoder("utf-8", { fatal: true });
  #pieces: Uint8Array[] = [];
  #bufferedBytes = 0;

  /**
   * @param options The line length limit.
   * @throws {RangeError} When `maxLineBytes` is not a positive integer.
   */
  constructor(options: LineSplitterOptions = {}) {
    const max = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    if (!Number.isSafeInteger(max) || max <= 0) {
      throw new RangeError(`Invalid maxLineBytes ${max}: expected a positive integer`);
    }
    this.#maxLineBytes = max;
  }

  /** Bytes of an unfinished line held so far. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /**
   * Feeds one chunk. The chunk is not kept: the caller may reuse its buffer afterwards.
   *
   * @param chunk Bytes as they arrived.
   * @returns The lines this chunk completed, in order.
   * @throws {QmpProtocolError} When a line passes the limit or is not valid UTF-8.
   */
  push(chunk: Uint8Array): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end >= 0; end = chunk.indexOf(NEWLINE, start)) {
      const tail = chunk.subarray(start, end);
      this.#checkLength(this.#bufferedBytes + tail.byteLength - (this.#endsWithReturn(tail) ? 1 : 0));
      const line = this.#decode(this.#bufferedBytes === 0 ? tail : this.#join(tail));
      if (line.trim() !== "") lines.push(line);
      start = end + 1;
    }
    if (start < chunk.byteLength) {
      const rest = chunk.subarray(start);
      // One byte of grace: the last byte may be the `\r` of a `\r\n` still to come.
      this.#checkLength(this.#bufferedBytes + rest.byteLength - 1);
      this.#pieces.push(rest.slice());
      this.#bufferedBytes += rest.byteLength;
    }
    return lines;
  }

  #checkLength(lineBytes: number): void {
    if (lineBytes > this.#maxLineBytes) {
      this.#pieces = [];
      this.#bufferedBytes = 0;
      throw new QmpProtocolError(`QMP peer sent a line longer than the limit of ${this.#maxLineBytes} bytes`);
    }
  }

  #endsWithReturn(tail: Uint8Array): boolean {
    const last = tail.byteLength > 0 ? tail : this.#pieces.at(-1);
    return last !== undefined && last[last.byteLength - 1] === CARRIAGE_RETURN;
  }

  #join(tail: Uint8Array): Uint8Array {
    const bytes = new Uint8Array(this.#bufferedBytes + tail.byteLength);
    let offset = 0;
    for (const piece of this.#pieces) {
      bytes.set(piece, offset);
      offset += piece.byteLength;
    }
    bytes.set(tail, offset);
    this.#pieces = [];
    this.#bufferedBytes = 0;
    return bytes;
  }

  #decode(bytes: Uint8Array): string {
    const end = bytes.byteLength > 0 && bytes[bytes.byteLength - 1] === CARRIAGE_RETURN ? bytes.byteLength - 1 : bytes.byteLength;
    try {
      return this.#decoder.decode(bytes.subarray(0, end));
    } catch (error) {
      throw new QmpProtocolError("QMP peer sent a line that is not valid UTF-8", { cause: error });
    }
  }
}
