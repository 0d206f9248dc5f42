/**
 * Splits the byte stream of an RPC connection into messages (libvirt's framing, packet.ts), enforcing
 * the message limit before buffering a byte of an oversized message. Data frames (STREAM, status
 * CONTINUE, a payload) can be streamed: their payload goes on piece by piece as it arrives, straight
 * from the socket's memory, instead of being assembled into a frame buffer first (a download of 512
 * MiB is 2,048 such frames, nearly all of them spanning socket reads).
 *
 * @module
 */
import type { BufferPool } from "./buffer_pool.ts";
import { MESSAGE_MAX_BYTES, MessageStatus, MessageType, type Packet, type PacketHeader, parseFrame, parseHeader, readUint32 } from "./packet.ts";
import { ProtocolError } from "./protocol_error.ts";

/** Where {@linkcode FrameDecoder.feed} puts what it decodes, in the order it came on the wire. */
export interface FrameSink {
  /**
   * A whole message. Its payload is valid only during the call unless `owned` (then it may be kept,
   * and given back with `FrameDecoder.release`).
   */
  packet(packet: Packet): void;
  /**
   * When present, data frames are streamed: this gets each piece of a data frame's payload as it
   * arrives (a frame may come in several pieces, every one with the frame's header), a view into the
   * chunk being fed, valid only during the call.
   */
  data?(header: PacketHeader, piece: Uint8Array): void;
}

/**
 * The length word and the header (4 + HEADER_BYTES, written out: packet.ts re-exports this module, so
 * its bindings are not yet initialised while this module's top level runs).
 */
const FRAME_HEAD_BYTES = 28;
/** Messages up to this size get their whole buffer at once; larger ones one that doubles as bytes arrive. */
const EXACT_MAX_BYTES = 1024 * 1024;

function isData(bytes: Uint8Array, at: number, length: number): boolean {
  return length > FRAME_HEAD_BYTES && readUint32(bytes, at + 16) === MessageType.STREAM && readUint32(bytes, at + 24) === MessageStatus.CONTINUE;
}

/**
 * Splits a byte stream into messages. Push (or feed) each chunk the socket delivers; whole messages
 * come out in order. A length word below the header size or above the limit throws a
 * {@linkcode ProtocolError} at once, before anything of that message is buffered.
 *
 * The caller may reuse a chunk's memory as soon as `push()` or `feed()` returned and it is done with
 * the packets that chunk completed (a socket reading into one receive buffer does): a message that is
 * still incomplete is copied out of the chunk before the call returns. A message wholly inside one
 * chunk comes out as a view into it (`owned: false`); one that spanned several chunks was assembled
 * into a buffer of its own (`owned: true`), from the pool when one is given: give it back with
 * {@linkcode FrameDecoder.release} once nothing reads it any more. Use one of `push()` and a feed with
 * a data sink per decoder, not both.
 *
 * @example
 * ```ts
 * import { FrameDecoder, encodePacket, REMOTE_PROGRAM } from "./packet.ts";
 * const frame = encodePacket({ program: REMOTE_PROGRAM, version: 1, procedure: 1, type: 1, serial: 7, status: 0 });
 * const d = new FrameDecoder();
 * const first = d.push(frame.subarray(0, 5));
 * const rest = d.push(frame.subarray(5));
 * if (first.length !== 0 || rest.length !== 1 || rest[0]!.header.serial !== 7 || !rest[0]!.owned) throw new Error("unexpected");
 * ```
 * @example A data frame split across two chunks comes out as two pieces, nothing assembled
 * ```ts
 * import { FrameDecoder, encodePacket } from "./packet.ts";
 * const frame = encodePacket({ program: 1, version: 1, procedure: 209, type: 3, serial: 2, status: 2 }, Uint8Array.of(1, 2, 3, 4));
 * const pieces: string[] = [];
 * const d = new FrameDecoder();
 * const sink = { packet() {}, data: (_: unknown, piece: Uint8Array) => void pieces.push(piece.join()) };
 * d.feed(frame.subarray(0, 30), sink);
 * d.feed(frame.subarray(30), sink);
 * if (pieces.join("|") !== "1,2|3,4") throw new Error("unexpected");
 * ```
 */
export class FrameDecoder {
  readonly #maxBytes: number;
  readonly #pool: BufferPool | undefined;
  /** The first bytes of a frame split across chunks: its length word, and its header when streaming. */
  readonly #head = new Uint8Array(FRAME_HEAD_BYTES);
  #headFill = 0;
  /** The checked length word of the frame in `#head` once its four bytes are there (0 before). */
  #headLength = 0;
  /** The message being assembled (its full length once known; grown step by step beyond the pool's size). */
  #frame: Uint8Array | undefined;
  #frameLength = 0;
  #fill = 0;
  /** The data frame being streamed: its header, length and payload bytes still to come. */
  #data: PacketHeader | undefined;
  #dataLength = 0;
  #dataLeft = 0;

  /**
   * @param maxBytes Largest header + payload accepted (default libvirt's 16 MiB).
   * @param pool Where the buffers of messages that span several chunks come from (default: fresh
   *   allocations).
   */
  constructor(maxBytes = MESSAGE_MAX_BYTES, pool?: BufferPool) {
    this.#maxBytes = maxBytes;
    this.#pool = pool;
  }

  /** Bytes held or streamed that do not yet form a whole message. */
  get pendingBytes(): number {
    return this.#headFill + this.#fill + (this.#dataLeft > 0 ? this.#dataLength - this.#dataLeft : 0);
  }

  /**
   * Adds bytes and returns the messages they complete (data frames assembled whole).
   *
   * @param chunk Bytes from the socket (not retained: incomplete messages are copied out).
   * @returns The complete messages, in order.
   * @throws {ProtocolError} For a bad length word or header.
   */
  push(chunk: Uint8Array): Packet[] {
    const out: Packet[] = [];
    this.feed(chunk, { packet: (packet) => void out.push(packet) });
    return out;
  }

  /**
   * Adds bytes and hands what they complete to `sink`, in wire order: whole messages, and with a
   * `data` receiver the pieces of data frames as they arrive.
   *
   * @param chunk Bytes from the socket (not retained: incomplete messages are copied out).
   * @param sink Gets the messages and data.
   * @throws {ProtocolError} For a bad length word or header; whatever the sink throws.
   */
  feed(chunk: Uint8Array, sink: FrameSink): void {
    const n = chunk.length;
    const want = sink.data ? FRAME_HEAD_BYTES : 4;
    let at = 0;
    while (at < n) {
      if (this.#dataLeft > 0) {
        at = this.#streamData(chunk, at, sink);
        continue;
      }
      if (this.#frame) {
        at = this.#continue(chunk, at, sink);
        continue;
      }
      if (this.#headFill > 0 || n - at < want) {
        const take = Math.min(want - this.#headFill, n - at);
        this.#head.set(chunk.subarray(at, at + take), this.#headFill);
        this.#headFill += take;
        at += take;
        if (this.#headLength === 0 && this.#headFill >= 4) this.#headLength = this.#checkLength(readUint32(this.#head, 0));
        if (this.#headFill < want) break;
        const length = this.#headLength;
        const have = this.#headFill;
        this.#headFill = 0;
        this.#headLength = 0;
        if (sink.data && isData(this.#head, 0, length)) this.#startData(parseHeader(this.#head, 0), length);
        else if (length === have) sink.packet(parseFrame(this.#head.slice(0, have), true));
        else this.#begin(length, have).set(this.#head.subarray(0, have), 0);
        continue;
      }
      const length = this.#checkLength(readUint32(chunk, at));
      if (sink.data && isData(chunk, at, length)) {
        this.#startData(parseHeader(chunk, at), length);
        at += FRAME_HEAD_BYTES;
        continue;
      }
      if (n - at >= length) {
        // The common case, the chunk holds the whole message: a view, no copy.
        sink.packet(parseFrame(chunk.subarray(at, at + length)));
        at += length;
        continue;
      }
      const part = chunk.subarray(at);
      this.#begin(length, part.length).set(part, 0);
      at = n;
    }
  }

  /**
   * Gives an owned packet's buffer back to the pool (nothing for a view or without a pool). Only once
   * nothing reads its payload any more.
   *
   * @param packet A packet this decoder returned.
   */
  release(packet: Packet): void {
    if (packet.owned) this.#pool?.release(packet.payload);
  }

  /** Throws when bytes of an unfinished message are held (the peer closed mid-message). */
  finish(): void {
    const held = this.pendingBytes;
    if (held > 0) {
      const of = this.#frame ? this.#frameLength : this.#dataLeft > 0 ? this.#dataLength : "?";
      throw new ProtocolError(`connection ended inside a message: ${held} of ${of} bytes received`);
    }
  }

  #checkLength(length: number): number {
    if (length < FRAME_HEAD_BYTES) throw new ProtocolError(`RPC length word ${length} is below the ${FRAME_HEAD_BYTES}-byte minimum`);
    if (length - 4 > this.#maxBytes) throw new ProtocolError(`RPC message of ${length - 4} bytes exceeds the limit of ${this.#maxBytes} bytes`);
    return length;
  }

  #startData(header: PacketHeader, length: number): void {
    this.#data = header;
    this.#dataLength = length;
    this.#dataLeft = length - FRAME_HEAD_BYTES;
  }

  #streamData(chunk: Uint8Array, at: number, sink: FrameSink): number {
    if (!sink.data) throw new Error("FrameDecoder: a data frame being streamed went on in push()");
    const take = Math.min(this.#dataLeft, chunk.length - at);
    const header = this.#data!;
    this.#dataLeft -= take;
    if (this.#dataLeft === 0) this.#data = undefined;
    sink.data(header, chunk.subarray(at, at + take));
    return at + take;
  }

  /** Starts assembling a message of `length` bytes of which `have` are at hand; returns where to put them. */
  #begin(length: number, have: number): Uint8Array {
    const pooled = this.#pool !== undefined && length <= this.#pool.bufferBytes;
    // Beyond 1 MiB the buffer grows with what arrives: a peer announcing 16 MiB and sending four bytes
    // does not get 16 MiB allocated.
    const size = pooled || length <= EXACT_MAX_BYTES ? length : Math.min(length, Math.max(EXACT_MAX_BYTES, 2 * have));
    this.#frame = pooled ? this.#pool!.acquire(length) : new Uint8Array(size);
    this.#frameLength = length;
    this.#fill = have;
    return this.#frame;
  }

  #continue(chunk: Uint8Array, at: number, sink: FrameSink): number {
    let frame = this.#frame!;
    const take = Math.min(chunk.length - at, this.#frameLength - this.#fill);
    if (this.#fill + take > frame.length) {
      const grown = new Uint8Array(Math.min(this.#frameLength, Math.max(2 * frame.length, this.#fill + take)));
      grown.set(frame.subarray(0, this.#fill));
      this.#frame = frame = grown;
    }
    frame.set(chunk.subarray(at, at + take), this.#fill);
    this.#fill += take;
    if (this.#fill === this.#frameLength) {
      this.#frame = undefined;
      this.#fill = 0;
      let packet: Packet;
      try {
        packet = parseFrame(frame, true);
      } catch (error) {
        this.#pool?.release(frame);
        throw error;
      }
      sink.packet(packet);
    }
    return at + take;
  }
}
