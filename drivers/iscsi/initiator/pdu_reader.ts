/**
 * Splits the byte stream of an iSCSI connection into PDUs. Data-In payloads can go straight into the
 * buffer of the read they answer (`place`), so a read costs one copy from the socket's chunks and
 * no allocation per PDU; any other data segment is gathered into a fresh array.
 *
 * @module
 */
import { BHS_BYTES, decodeHeader, type Header, paddingOf } from "./pdu.ts";

/** What the reader calls. */
export interface PduSink {
  /**
   * Where the data segment of `header` goes, when the caller wants it placed: a view of exactly
   * `header.dataBytes` bytes. `undefined` gathers it into a new array passed to `pdu`.
   */
  place(header: Header): Uint8Array | undefined;
  /**
   * One complete PDU.
   *
   * @param header Its header.
   * @param data Its data segment when it was gathered (empty when there was none), `undefined` when placed.
   */
  pdu(header: Header, data: Uint8Array | undefined): void;
}

/** The largest data segment accepted; a target may not send more than we declared, 16 MiB is the wire limit. */
const MAX_DATA_BYTES = 1 << 24;

/**
 * Incremental PDU reader: feed it every chunk the socket gives, in order.
 *
 * @example
 * ```ts
 * import { PduReader } from "./pdu_reader.ts";
 * import { encodeHeader } from "./pdu.ts";
 * const seen: number[] = [];
 * const reader = new PduReader({ place: () => undefined, pdu: (h, data) => seen.push(h.opcode, data!.length) });
 * const header = encodeHeader({ opcode: 0x24, flags: 0x80, itt: 1, data: new Uint8Array(3) });
 * const wire = new Uint8Array([...header, 1, 2, 3, 0]);
 * reader.push(wire.subarray(0, 10));
 * reader.push(wire.subarray(10));
 * if (seen.join() !== "36,3") throw new Error(seen.join());
 * ```
 */
export class PduReader {
  readonly #sink: PduSink;
  readonly #bhs = new Uint8Array(BHS_BYTES);
  #bhsFilled = 0;
  #header: Header | undefined;
  /** Where the current data segment goes, and how much of it (then padding and AHS to skip) is left. */
  #target: Uint8Array | undefined;
  #placed = false;
  #filled = 0;
  #skipBefore = 0;
  #skipAfter = 0;

  /** @param sink Where PDUs go. */
  constructor(sink: PduSink) {
    this.#sink = sink;
  }

  /**
   * Consumes a chunk.
   *
   * @param chunk Bytes from the socket (not kept after the call returns).
   * @throws {RangeError} For a data segment over 16 MiB (a broken stream).
   */
  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.byteLength) {
      if (this.#header === undefined) {
        const n = Math.min(BHS_BYTES - this.#bhsFilled, chunk.byteLength - at);
        this.#bhs.set(chunk.subarray(at, at + n), this.#bhsFilled);
        this.#bhsFilled += n;
        at += n;
        if (this.#bhsFilled === BHS_BYTES) this.#startPdu();
        continue;
      }
      if (this.#skipBefore > 0) {
        const n = Math.min(this.#skipBefore, chunk.byteLength - at);
        this.#skipBefore -= n;
        at += n;
        if (this.#skipBefore > 0) continue;
      }
      const target = this.#target!;
      if (this.#filled < target.byteLength) {
        const n = Math.min(target.byteLength - this.#filled, chunk.byteLength - at);
        target.set(chunk.subarray(at, at + n), this.#filled);
        this.#filled += n;
        at += n;
      }
      if (this.#filled === target.byteLength) {
        const n = Math.min(this.#skipAfter, chunk.byteLength - at);
        this.#skipAfter -= n;
        at += n;
        if (this.#skipAfter === 0) this.#finishPdu();
      }
    }
  }

  #startPdu(): void {
    const header = decodeHeader(this.#bhs.slice());
    this.#bhsFilled = 0;
    if (header.dataBytes > MAX_DATA_BYTES) throw new RangeError(`Invalid iSCSI PDU: data segment of ${header.dataBytes} bytes`);
    this.#header = header;
    this.#skipBefore = header.ahsBytes;
    this.#skipAfter = paddingOf(header.dataBytes);
    this.#filled = 0;
    const placed = header.dataBytes > 0 ? this.#sink.place(header) : undefined;
    this.#placed = placed !== undefined;
    this.#target = placed ?? new Uint8Array(header.dataBytes);
    if (header.ahsBytes === 0 && header.dataBytes === 0) this.#finishPdu();
  }

  #finishPdu(): void {
    const header = this.#header!;
    const data = this.#placed ? undefined : this.#target;
    this.#header = undefined;
    this.#target = undefined;
    this.#sink.pdu(header, data);
  }
}
