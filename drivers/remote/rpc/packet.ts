/**
 * libvirt's RPC framing (virnetprotocol.x): a big-endian length word counting itself, a 24-byte header
 * (program, version, procedure, type, serial, status) and an XDR payload. {@linkcode FrameDecoder}
 * reassembles messages from arbitrary socket chunks and enforces the 16 MiB limit before buffering a
 * byte of an oversized message; {@linkcode encodePacket} writes one.
 *
 * @module
 */
import type { BufferPool } from "./buffer_pool.ts";
import type { Codec } from "./codec.ts";
import { ProtocolError } from "./protocol_error.ts";
import { XdrWriter } from "./xdr.ts";

/** libvirt's REMOTE program. */
export const REMOTE_PROGRAM = 0x20008086;
/** Version of the REMOTE program. */
export const REMOTE_PROTOCOL_VERSION = 1;
/** libvirt's KEEPALIVE program (`"keep"`). */
export const KEEPALIVE_PROGRAM = 0x6b656570;
/** Version of the KEEPALIVE program. */
export const KEEPALIVE_PROTOCOL_VERSION = 1;
/** Largest header + payload (the length word not counted), `VIR_NET_MESSAGE_MAX`. */
export const MESSAGE_MAX_BYTES = 16 * 1024 * 1024;
/** Size of the header after the length word. */
export const HEADER_BYTES = 24;
/** Largest payload of a STREAM frame libvirt sends (`VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX` less the header). */
export const STREAM_CHUNK_BYTES = 262_120;
/** Largest string libvirt accepts in a message (`VIR_NET_MESSAGE_STRING_MAX`). */
export const STRING_MAX_BYTES = 4 * 1024 * 1024;

/** Message types. */
export const MessageType = Object.freeze({ CALL: 0, REPLY: 1, MESSAGE: 2, STREAM: 3, CALL_WITH_FDS: 4, REPLY_WITH_FDS: 5 });
/** Message statuses. */
export const MessageStatus = Object.freeze({ OK: 0, ERROR: 1, CONTINUE: 2 });

/** The header of one message. */
export interface PacketHeader {
  /** Program number. */
  readonly program: number;
  /** Program version. */
  readonly version: number;
  /** Procedure number. */
  readonly procedure: number;
  /** One of {@linkcode MessageType}. */
  readonly type: number;
  /** Call serial (echoed by replies and stream frames). */
  readonly serial: number;
  /** One of {@linkcode MessageStatus}. */
  readonly status: number;
}

/** One whole message. */
export interface Packet {
  /** Its header. */
  readonly header: PacketHeader;
  /** The XDR payload (a view into the frame). */
  readonly payload: Uint8Array;
  /**
   * True when the frame was assembled into a buffer of its own (it spanned several reads), so the
   * payload's memory may be kept or handed on without a copy (and given back with
   * `FrameDecoder.release`); false when it is a view into the caller's chunk, valid only until the
   * caller reuses that chunk.
   */
  readonly owned?: boolean;
}

/**
 * Encodes one message: length word, header, payload.
 *
 * @param header The header.
 * @param payload The XDR payload, or a function writing it straight into the frame (no extra copy).
 * @returns The frame: memory of its own that no later call touches (the socket may hold it until sent).
 * @throws {RangeError} When the message exceeds {@linkcode MESSAGE_MAX_BYTES}.
 * @example
 * ```ts
 * import { encodePacket, REMOTE_PROGRAM, MessageType, MessageStatus } from "./packet.ts";
 * const frame = encodePacket({ program: REMOTE_PROGRAM, version: 1, procedure: 66, type: MessageType.CALL, serial: 0, status: MessageStatus.OK });
 * if (frame.length !== 28 || frame[3] !== 28 || frame[15] !== 66) throw new Error("unexpected");
 * ```
 */
export function encodePacket(header: PacketHeader, payload?: Uint8Array | ((w: XdrWriter) => void)): Uint8Array {
  return encodeFrame(header, payload, undefined, undefined);
}

/**
 * Encodes one message whose payload is `value` in `codec`: what {@linkcode encodePacket} does with a
 * payload function, without making one per message (the client's path for every CALL).
 *
 * @param header The header.
 * @param codec The payload's codec.
 * @param value The payload.
 * @returns The frame (memory of its own).
 * @throws {RangeError} When the message exceeds {@linkcode MESSAGE_MAX_BYTES}, or the value does not fit its codec.
 * @example
 * ```ts
 * import { encodeMessage, encodePacket, REMOTE_PROGRAM } from "./packet.ts";
 * import { string } from "./codec.ts";
 * const header = { program: REMOTE_PROGRAM, version: 1, procedure: 23, type: 0, serial: 1, status: 0 };
 * const a = encodeMessage(header, string(64), "test");
 * const b = encodePacket(header, (w) => w.string("test"));
 * if (a.length !== 36 || a.join() !== b.join()) throw new Error("unexpected");
 * ```
 */
export function encodeMessage<T>(header: PacketHeader, codec: Codec<T>, value: T): Uint8Array {
  return encodeFrame(header, undefined, codec as Codec<unknown>, value);
}

function encodeFrame(header: PacketHeader, payload: Uint8Array | ((w: XdrWriter) => void) | undefined, codec: Codec<unknown> | undefined, value: unknown): Uint8Array {
  // One scratch writer for every frame (a fresh one per CALL cost more than encoding the call), unless
  // a payload function encodes a frame of its own meanwhile.
  const w = scratchBusy ? new XdrWriter(256) : scratch;
  const ownsScratch = w === scratch;
  if (ownsScratch) {
    scratchBusy = true;
    scratch.reset();
  }
  try {
    w.uint(0);
    w.uint(header.program);
    w.uint(header.version);
    w.int(header.procedure);
    w.uint(header.type);
    w.uint(header.serial);
    w.uint(header.status);
    // STREAM data is raw bytes, copied once, straight after the header.
    const data = payload instanceof Uint8Array ? payload : undefined;
    if (typeof payload === "function") payload(w);
    else if (codec) codec.encode(w, value);
    const length = w.length + (data?.length ?? 0);
    if (length - 4 > MESSAGE_MAX_BYTES) {
      throw new RangeError(`RPC message of ${length - 4} bytes exceeds libvirt's limit of ${MESSAGE_MAX_BYTES} bytes`);
    }
    w.patchUint(0, length);
    const out = frameBytes(length);
    out.set(w.finish(), 0);
    if (data) out.set(data, w.length);
    return out;
  } finally {
    if (ownsScratch) scratchBusy = false;
  }
}

const scratch = new XdrWriter(4096);
let scratchBusy = false;

/**
 * Small frames (calls, replies: tens of bytes) are cut from shared 64 KiB slabs, as Node's Buffer pool
 * does: a fresh ArrayBuffer each is an allocation the collector has to track. A piece is never handed
 * out twice, so a socket that holds one until it is sent is safe; larger frames get memory of their own.
 */
const SLAB_BYTES = 64 * 1024;
const SLAB_PIECE_MAX_BYTES = 4 * 1024;
let slab = new Uint8Array(SLAB_BYTES);
let slabAt = 0;

function frameBytes(bytes: number): Uint8Array {
  if (bytes > SLAB_PIECE_MAX_BYTES) return new Uint8Array(bytes);
  if (slabAt + bytes > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabAt = 0;
  }
  const out = slab.subarray(slabAt, slabAt + bytes);
  slabAt += (bytes + 7) & ~7;
  return out;
}

/**
 * Splits a byte stream into messages. Push each chunk the socket delivers; whole messages come out in
 * order. A length word below the header size or above the 16 MiB limit throws a
 * {@linkcode ProtocolError} at once, before anything of that message is buffered.
 *
 * The caller may reuse a chunk's memory as soon as `push()` returned and it is done with the packets
 * that chunk completed (a socket reading into one receive buffer does): a message that is still
 * incomplete is copied out of the chunk before `push()` returns. A message wholly inside one chunk comes
 * out as a view into it (`owned: false`); one that spanned several chunks was assembled into a buffer
 * of its own (`owned: true`), from the pool when one is given: give it back with
 * {@linkcode FrameDecoder.release} once nothing reads it any more.
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
 */
export class FrameDecoder {
  readonly #maxBytes: number;
  readonly #pool: BufferPool | undefined;
  /** The first bytes of a length word split across chunks. */
  readonly #head = new Uint8Array(4);
  #headFill = 0;
  /** The message being assembled (its full length once known; grown step by step beyond the pool's size). */
  #frame: Uint8Array | undefined;
  #frameLength = 0;
  #fill = 0;

  /**
   * @param maxBytes Largest header + payload accepted (default libvirt's 16 MiB).
   * @param pool Where the buffers of messages that span several chunks come from (default: fresh
   *   allocations).
   */
  constructor(maxBytes = MESSAGE_MAX_BYTES, pool?: BufferPool) {
    this.#maxBytes = maxBytes;
    this.#pool = pool;
  }

  /** Bytes held that do not yet form a whole message. */
  get pendingBytes(): number {
    return this.#headFill + this.#fill;
  }

  /**
   * Adds bytes and returns the messages they complete.
   *
   * @param chunk Bytes from the socket (not retained: incomplete messages are copied out).
   * @returns The complete messages, in order.
   * @throws {ProtocolError} For a bad length word or header.
   */
  push(chunk: Uint8Array): Packet[] {
    const out: Packet[] = [];
    const n = chunk.length;
    let at = 0;
    while (at < n) {
      if (this.#frame) {
        at = this.#continue(chunk, at, out);
        continue;
      }
      let length: number;
      if (this.#headFill > 0 || n - at < 4) {
        const take = Math.min(4 - this.#headFill, n - at);
        this.#head.set(chunk.subarray(at, at + take), this.#headFill);
        this.#headFill += take;
        at += take;
        if (this.#headFill < 4) break;
        length = this.#checkLength(readUint32(this.#head, 0));
        this.#headFill = 0;
        this.#begin(length, 4).set(this.#head, 0);
        continue;
      }
      length = this.#checkLength(readUint32(chunk, at));
      if (n - at >= length) {
        // The common case, the chunk holds the whole message: a view, no copy.
        out.push(parseFrame(chunk.subarray(at, at + length)));
        at += length;
        continue;
      }
      const part = chunk.subarray(at);
      this.#begin(length, part.length).set(part, 0);
      at = n;
    }
    return out;
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
      throw new ProtocolError(`connection ended inside a message: ${held} of ${this.#frame ? this.#frameLength : "?"} bytes received`);
    }
  }

  #checkLength(length: number): number {
    if (length < 4 + HEADER_BYTES) throw new ProtocolError(`RPC length word ${length} is below the ${4 + HEADER_BYTES}-byte minimum`);
    if (length - 4 > this.#maxBytes) throw new ProtocolError(`RPC message of ${length - 4} bytes exceeds the limit of ${this.#maxBytes} bytes`);
    return length;
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

  #continue(chunk: Uint8Array, at: number, out: Packet[]): number {
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
      out.push(packet);
    }
    return at + take;
  }
}

/** Messages up to this size get their whole buffer at once; larger ones one that doubles as bytes arrive. */
const EXACT_MAX_BYTES = 1024 * 1024;

function readUint32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/**
 * Parses one whole frame (length word included).
 *
 * @param frame The bytes of exactly one message.
 * @param owned Whether `frame` is a buffer of its own (recorded in the packet).
 * @returns Its header and payload.
 * @throws {ProtocolError} When the length word does not match, or the type or status is unknown.
 */
export function parseFrame(frame: Uint8Array, owned = false): Packet {
  if (frame.length < 4 + HEADER_BYTES) throw new ProtocolError(`RPC frame of ${frame.length} bytes is shorter than a header`);
  const length = readUint32(frame, 0);
  if (length !== frame.length) throw new ProtocolError(`RPC length word ${length} does not match the frame's ${frame.length} bytes`);
  const header: PacketHeader = {
    program: readUint32(frame, 4),
    version: readUint32(frame, 8),
    procedure: readUint32(frame, 12) | 0,
    type: readUint32(frame, 16),
    serial: readUint32(frame, 20),
    status: readUint32(frame, 24),
  };
  if (header.type > MessageType.REPLY_WITH_FDS) throw new ProtocolError(`RPC message type ${header.type} is unknown`);
  if (header.status > MessageStatus.CONTINUE) throw new ProtocolError(`RPC message status ${header.status} is unknown`);
  return { header, payload: frame.subarray(4 + HEADER_BYTES), owned };
}
