/**
 * libvirt's RPC framing (virnetprotocol.x): a big-endian length word counting itself, a 24-byte header
 * (program, version, procedure, type, serial, status) and an XDR payload. {@linkcode FrameDecoder}
 * reassembles messages from arbitrary socket chunks and enforces the 16 MiB limit before buffering a
 * byte of an oversized message; {@linkcode encodePacket} writes one.
 *
 * @module
 */
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
   * payload's memory may be handed on without a copy; false when it is a view into the caller's chunk.
   */
  readonly owned?: boolean;
}

/**
 * Encodes one message: length word, header, payload.
 *
 * @param header The header.
 * @param payload The XDR payload, or a function writing it straight into the frame (no extra copy).
 * @returns The frame.
 * @throws {RangeError} When the message exceeds {@linkcode MESSAGE_MAX_BYTES}.
 * @example
 * ```ts
 * import { encodePacket, REMOTE_PROGRAM, MessageType, MessageStatus } from "./packet.ts";
 * const frame = encodePacket({ program: REMOTE_PROGRAM, version: 1, procedure: 66, type: MessageType.CALL, serial: 0, status: MessageStatus.OK });
 * if (frame.length !== 28 || frame[3] !== 28 || frame[15] !== 66) throw new Error("unexpected");
 * ```
 */
export function encodePacket(header: PacketHeader, payload?: Uint8Array | ((w: XdrWriter) => void)): Uint8Array {
  const size = 4 + HEADER_BYTES + (payload instanceof Uint8Array ? payload.length : 0);
  const w = new XdrWriter(typeof payload === "function" ? Math.max(size, 256) : size, 0);
  w.uint(0);
  w.uint(header.program);
  w.uint(header.version);
  w.int(header.procedure);
  w.uint(header.type);
  w.uint(header.serial);
  w.uint(header.status);
  // A payload is written as it is: XDR bodies are whole words already, STREAM data is raw bytes.
  if (payload instanceof Uint8Array) w.raw(payload);
  else if (payload) payload(w);
  const length = w.length;
  if (length - 4 > MESSAGE_MAX_BYTES) {
    throw new RangeError(`RPC message of ${length - 4} bytes exceeds libvirt's limit of ${MESSAGE_MAX_BYTES} bytes`);
  }
  w.patchUint(0, length);
  return w.finish();
}

/**
 * Splits a byte stream into messages. Push each chunk the socket delivers; whole messages come out in
 * order. A length word below the header size or above the 16 MiB limit throws a
 * {@linkcode ProtocolError} at once, before anything of that message is buffered.
 *
 * @example
 * ```ts
 * import { FrameDecoder, encodePacket, REMOTE_PROGRAM } from "./packet.ts";
 * const frame = encodePacket({ program: REMOTE_PROGRAM, version: 1, procedure: 1, type: 1, serial: 7, status: 0 });
 * const d = new FrameDecoder();
 * const first = d.push(frame.subarray(0, 5));
 * const rest = d.push(frame.subarray(5));
 * if (first.length !== 0 || rest.length !== 1 || rest[0]!.header.serial !== 7) throw new Error("unexpected");
 * ```
 */
export class FrameDecoder {
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #need = 4;
  readonly #maxBytes: number;

  /**
   * @param maxBytes Largest header + payload accepted (default libvirt's 16 MiB).
   */
  constructor(maxBytes = MESSAGE_MAX_BYTES) {
    this.#maxBytes = maxBytes;
  }

  /** Bytes held that do not yet form a whole message. */
  get pendingBytes(): number {
    return this.#buffered;
  }

  /**
   * Adds bytes and returns the messages they complete.
   *
   * @param chunk Bytes from the socket (not retained after the call when they complete a message).
   * @returns The complete messages, in order.
   * @throws {ProtocolError} For a bad length word or header.
   */
  push(chunk: Uint8Array): Packet[] {
    const out: Packet[] = [];
    if (chunk.length === 0) return out;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    while (this.#buffered >= this.#need) {
      if (this.#need === 4) {
        const lenBytes = this.#peek(4);
        const length = ((lenBytes[0]! << 24) | (lenBytes[1]! << 16) | (lenBytes[2]! << 8) | lenBytes[3]!) >>> 0;
        if (length < 4 + HEADER_BYTES) throw new ProtocolError(`RPC length word ${length} is below the ${4 + HEADER_BYTES}-byte minimum`);
        if (length - 4 > this.#maxBytes) {
          throw new ProtocolError(`RPC message of ${length - 4} bytes exceeds the limit of ${this.#maxBytes} bytes`);
        }
        this.#need = length;
        continue;
      }
      const [frame, owned] = this.#take(this.#need);
      this.#need = 4;
      out.push(owned ? { ...parseFrame(frame), owned } : parseFrame(frame));
    }
    return out;
  }

  /** Throws when bytes of an unfinished message are held (the peer closed mid-message). */
  finish(): void {
    if (this.#buffered > 0) {
      throw new ProtocolError(`connection ended inside a message: ${this.#buffered} of ${this.#need > 4 ? this.#need : "?"} bytes received`);
    }
  }

  #peek(n: number): Uint8Array {
    const first = this.#chunks[0]!;
    if (first.length >= n) return first;
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of this.#chunks) {
      const take = Math.min(c.length, n - at);
      out.set(c.subarray(0, take), at);
      at += take;
      if (at === n) break;
    }
    return out;
  }

  #take(n: number): [Uint8Array, boolean] {
    const first = this.#chunks[0]!;
    if (first.length >= n) {
      // The common case, one chunk holds the whole frame: a view, no copy.
      const frame = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.#buffered -= n;
      return [frame, false];
    }
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = this.#chunks[0]!;
      const take = Math.min(c.length, n - at);
      out.set(c.subarray(0, take), at);
      at += take;
      if (take === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(take);
    }
    this.#buffered -= n;
    return [out, true];
  }
}

/**
 * Parses one whole frame (length word included).
 *
 * @param frame The bytes of exactly one message.
 * @returns Its header and payload.
 * @throws {ProtocolError} When the length word does not match, or the type or status is unknown.
 */
export function parseFrame(frame: Uint8Array): Packet {
  if (frame.length < 4 + HEADER_BYTES) throw new ProtocolError(`RPC frame of ${frame.length} bytes is shorter than a header`);
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const length = v.getUint32(0);
  if (length !== frame.length) throw new ProtocolError(`RPC length word ${length} does not match the frame's ${frame.length} bytes`);
  const header: PacketHeader = {
    program: v.getUint32(4),
    version: v.getUint32(8),
    procedure: v.getInt32(12),
    type: v.getUint32(16),
    serial: v.getUint32(20),
    status: v.getUint32(24),
  };
  if (header.type > MessageType.REPLY_WITH_FDS) throw new ProtocolError(`RPC message type ${header.type} is unknown`);
  if (header.status > MessageStatus.CONTINUE) throw new ProtocolError(`RPC message status ${header.status} is unknown`);
  return { header, payload: frame.subarray(4 + HEADER_BYTES) };
}
