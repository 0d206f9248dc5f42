/**
 * libvirt's RPC framing (virnetprotocol.x): a big-endian length word counting itself, a 24-byte header
 * (program, version, procedure, type, serial, status) and an XDR payload. {@linkcode FrameDecoder}
 * (frame_decoder.ts) reassembles messages from arbitrary socket chunks and enforces the 16 MiB limit
 * before buffering a byte of an oversized message; {@linkcode encodePacket} writes one.
 *
 * @module
 */
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

export { FrameDecoder, type FrameSink } from "./frame_decoder.ts";

/** Message types. `STREAM_HOLE` carries a hole of a sparse stream (a `virNetStreamHole`: hyper length, uint flags). */
export const MessageType = Object.freeze({ CALL: 0, REPLY: 1, MESSAGE: 2, STREAM: 3, CALL_WITH_FDS: 4, REPLY_WITH_FDS: 5, STREAM_HOLE: 6 });
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
 * Reads a big-endian 32-bit word (XDR's unsigned int).
 *
 * @param bytes Where.
 * @param at Its offset.
 * @returns The word.
 * @example
 * ```ts
 * import { readUint32 } from "./packet.ts";
 * if (readUint32(Uint8Array.of(0, 0, 1, 2, 0xff, 0, 0, 0), 2) !== 0x0102ff00) throw new Error("unexpected");
 * ```
 */
export function readUint32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/**
 * Parses one whole frame (length word included).
 *
 * @param frame The bytes of exactly one message.
 * @param owned Whether `frame` is a buffer of its own (recorded in the packet).
 * @returns Its header and payload.
 * @throws {ProtocolError} When the length word does not match, or the type or status is unknown.
 * @example
 * ```ts
 * import { encodePacket, parseFrame } from "./packet.ts";
 * const { header, payload } = parseFrame(encodePacket({ program: 1, version: 1, procedure: 3, type: 1, serial: 9, status: 0 }, Uint8Array.of(5)));
 * if (header.serial !== 9 || payload.join() !== "5") throw new Error("unexpected");
 * ```
 */
export function parseFrame(frame: Uint8Array, owned = false): Packet {
  if (frame.length < 4 + HEADER_BYTES) throw new ProtocolError(`RPC frame of ${frame.length} bytes is shorter than a header`);
  const length = readUint32(frame, 0);
  if (length !== frame.length) throw new ProtocolError(`RPC length word ${length} does not match the frame's ${frame.length} bytes`);
  return { header: parseHeader(frame, 0), payload: frame.subarray(4 + HEADER_BYTES), owned };
}

/**
 * Parses the header of the frame starting at `at` (its length word not checked).
 *
 * @param bytes Holds at least the length word and the header from `at`.
 * @param at Where the frame starts.
 * @returns The header.
 * @throws {ProtocolError} When the type or status is unknown.
 * @example
 * ```ts
 * import { encodePacket, parseHeader } from "./packet.ts";
 * const frame = encodePacket({ program: 1, version: 1, procedure: 3, type: 3, serial: 9, status: 2 }, new Uint8Array(100));
 * if (parseHeader(frame.subarray(0, 28), 0).type !== 3) throw new Error("unexpected");
 * ```
 */
export function parseHeader(bytes: Uint8Array, at: number): PacketHeader {
  const header: PacketHeader = {
    program: readUint32(bytes, at + 4),
    version: readUint32(bytes, at + 8),
    procedure: readUint32(bytes, at + 12) | 0,
    type: readUint32(bytes, at + 16),
    serial: readUint32(bytes, at + 20),
    status: readUint32(bytes, at + 24),
  };
  if (header.type > MessageType.STREAM_HOLE) throw new ProtocolError(`RPC message type ${header.type} is unknown`);
  if (header.status > MessageStatus.CONTINUE) throw new ProtocolError(`RPC message status ${header.status} is unknown`);
  return header;
}
