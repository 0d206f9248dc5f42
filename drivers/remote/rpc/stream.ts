/**
 * One libvirt data stream (volume upload/download), as its opener sees it. Every STREAM frame echoes the
 * procedure and serial of the CALL that opened the stream. Data goes as STATUS CONTINUE frames of at
 * most {@linkcode STREAM_CHUNK_BYTES}; an empty CONTINUE from the sender marks the end of data; the
 * receiver of that then sends an empty OK and the other side confirms with OK. An empty ERROR from the
 * client aborts; an ERROR from the server carries a `remote_error`. Observed against libvirtd 9.0
 * (reference/libvirt-rpc.md §10).
 *
 * Backpressure: outgoing data waits for the socket to drain; incoming data is held up to
 * `highWaterBytes`, then the socket is paused until the reader is below half of that.
 *
 * Incoming data is copied once into what the reader gives ({@linkcode RpcStream.read}, or the BYOB
 * view of a read of `readable`): straight from the socket's memory when a read is waiting, otherwise
 * held until read. Held bytes stay where the socket put them when it lent that memory (a
 * {@linkcode ChunkLease}: retained until read, then released), else they are copied into a pooled
 * buffer first (given back once read): never a bare view into memory the next socket read reuses.
 *
 * Sparse streams (a download opened with libvirt's `SPARSE_STREAM` flag): the peer sends a hole as one
 * STREAM_HOLE frame with its length instead of that many zero bytes. The reader gets the zeros all the
 * same (a hole is guest-visible zeros), written into its buffer, never held in memory;
 * {@linkcode RpcStream.holeBytesRead} says how many of the bytes read so far were holes, so a paced
 * reader need not charge them against a cap. libvirt's own client reads holes the same way when asked
 * for plain bytes (`virStreamRecv` "pretends" the zeros).
 *
 * @module
 */
import { ConnectError } from "../../../core/errors.ts";
import { decode } from "./codec.ts";
import { streamHole } from "./protocol/common.ts";
import type { ChunkLease } from "./channel.ts";
import { MessageStatus, STREAM_CHUNK_BYTES } from "./packet.ts";
import { ProtocolError } from "./protocol_error.ts";

/** How a stream reaches its connection (given by `RpcClient.openStream`). */
export interface RpcStreamWiring {
  /** Procedure of the opening call. */
  readonly procedure: number;
  /** Serial of the opening call. */
  readonly serial: number;
  /** Sends one STREAM frame; resolves when the socket can take more. */
  send(status: number, payload?: Uint8Array): Promise<void>;
  /** Stops reading the socket. */
  pauseChannel(): void;
  /** Reads the socket again. */
  resumeChannel(): void;
  /** Copies bytes the stream must hold past the current socket read into memory of its own (from the pool). */
  hold(bytes: Uint8Array): Uint8Array;
  /** Gives a buffer from `hold()` back to the pool once its bytes were read. */
  release(bytes: Uint8Array): void;
  /** Decodes the `remote_error` of an ERROR frame. */
  mapError(payload: Uint8Array): Error;
  /** Called once the stream has ended either way. */
  done(): void;
  /** Whether the stream was opened sparse: the peer may send STREAM_HOLE frames (a protocol error otherwise). */
  readonly holes?: boolean;
}

/** Default bytes queued before the socket is paused (it reads again below half of that). */
const HIGH_WATER_BYTES = 8 * 1024 * 1024;

/**
 * Data held for the reader: a view kept under its lease, or (no lease) a copy from `wiring.hold()`; or
 * a hole's zeros still to be read (`zeros` of them, no memory).
 */
type Held = { bytes: Uint8Array; readonly lease: ChunkLease | undefined; zeros?: undefined } | { zeros: number };

/** A read waiting for data: pieces are copied straight into its target until `minBytes` are there. */
interface Waiter {
  readonly target: Uint8Array;
  filled: number;
  readonly minBytes: number;
  readonly resolve: (bytes: number) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * A data stream over an RPC connection.
 *
 * @example
 * ```ts
 * import { RpcStream } from "./stream.ts";
 * const sent: number[] = [];
 * const s = new RpcStream({ procedure: 209, serial: 1, send: async (status) => void sent.push(status),
 *   hold: (b) => b.slice(), release() {}, pauseChannel() {}, resumeChannel() {}, mapError: () => new Error("x"), done() {} });
 * s.receive(2, new Uint8Array([1, 2, 3]));
 * s.receive(2, new Uint8Array(0));   // end of data: the client answers OK
 * s.receive(0, new Uint8Array(0));   // the server confirms
 * const reader = s.readable.getReader();
 * const first = await reader.read();
 * if (first.value?.length !== 3 || !(await reader.read()).done || sent[0] !== 0) throw new Error("unexpected");
 * ```
 */
export class RpcStream {
  /** Procedure of the opening call. */
  readonly procedure: number;
  /** Serial of the opening call. */
  readonly serial: number;
  /** Incoming data (download). A byte stream: read it with a BYOB reader. */
  readonly readable: ReadableStream<Uint8Array>;
  readonly #wiring: RpcStreamWiring;
  readonly #highWaterBytes: number;
  /** Data received and not yet read, in order. */
  readonly #held: Held[] = [];
  /** Bytes of memory held (what the high-water mark counts). */
  #heldBytes = 0;
  /** Zeros of holes held: no memory, so not counted against the high-water mark. */
  #heldZeros = 0;
  #holeBytesRead = 0;
  #waiter: Waiter | undefined;
  #paused = false;
  #ended = false;
  /** Aborted by this side, waiting for the peer's answer: data that still comes is dropped. */
  #aborting = false;
  #finishing: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  #finished: Promise<void>;
  #failure: unknown;

  /**
   * @param wiring The connection side.
   * @param highWaterBytes Incoming bytes held before the socket pauses.
   */
  constructor(wiring: RpcStreamWiring, highWaterBytes = HIGH_WATER_BYTES) {
    this.#wiring = wiring;
    this.procedure = wiring.procedure;
    this.serial = wiring.serial;
    this.#highWaterBytes = highWaterBytes;
    let settle!: { resolve: () => void; reject: (e: unknown) => void };
    this.#finished = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    this.#finished.catch(() => {});
    this.#finishing = settle;
    this.readable = new ReadableStream({
      type: "bytes",
      // For default readers; a BYOB reader's own buffer is filled directly.
      autoAllocateChunkSize: STREAM_CHUNK_BYTES,
      pull: async (controller) => {
        const request = controller.byobRequest!;
        const view = request.view!;
        // The whole view per pull (many frames): one turn of the web stream per buffer, not per frame.
        const n = await this.read(new Uint8Array(view.buffer, view.byteOffset, view.byteLength), view.byteLength);
        if (n === 0) {
          controller.close();
          request.respond(0);
        } else request.respond(n);
      },
      cancel: () => this.abort(),
    }, { highWaterMark: 0 });
  }

  /** Incoming bytes held and not yet read: what a reader can take now without waiting for the socket. */
  get bufferedBytes(): number {
    return this.#heldBytes + this.#heldZeros;
  }

  /** How many of the bytes read so far were a hole's zeros (sparse streams; always 0 otherwise). */
  get holeBytesRead(): number {
    return this.#holeBytesRead;
  }

  /** Resolves when both sides agreed the stream is over; rejects with the peer's error. */
  get finished(): Promise<void> {
    return this.#finished;
  }

  /**
   * Copies incoming data into `target`: what is held at once, then data as it arrives, until at least
   * `minBytes` are there or the stream ends. One read at a time.
   *
   * @param target Where to put the bytes.
   * @param minBytes Bytes to wait for (at most `target.length`); default 1: whatever is there first.
   * @returns How many bytes were put there: `minBytes` or more, fewer only at the end; 0 once the
   *   stream has ended (or when `target` is empty).
   * @throws {VirtError} The peer's error, or a `ConnectError` when the connection or the stream broke.
   */
  read(target: Uint8Array, minBytes = 1): Promise<number> {
    const filled = this.#held.length > 0 ? this.#copyHeld(target) : 0;
    const wanted = Math.max(1, Math.min(minBytes, target.length));
    if (filled >= wanted || target.length === 0) return Promise.resolve(filled);
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#ended) return Promise.resolve(filled);
    if (this.#waiter) return Promise.reject(new TypeError("RpcStream.read(): a read is already waiting"));
    this.#resume();
    return new Promise((resolve, reject) => void (this.#waiter = { target, filled, minBytes: wanted, resolve, reject }));
  }

  /**
   * Handles one STREAM frame from the peer (called by the client).
   *
   * @param status The frame's status.
   * @param payload Its bytes: valid only during the call.
   */
  receive(status: number, payload: Uint8Array): void {
    if (status === MessageStatus.CONTINUE && payload.length > 0) this.receiveData(payload);
    else this.#control(status, payload);
  }

  /**
   * Handles one STREAM_HOLE frame from the peer: a `virNetStreamHole` (hyper length, uint flags), read
   * as that many zeros.
   *
   * @param status The frame's status (CONTINUE, as libvirt sends it).
   * @param payload Its bytes.
   * @throws {ProtocolError} When the stream was not opened sparse, or the frame is not a hole libvirt
   *   sends (another status, a length below 1, flags, bytes left over).
   */
  receiveHole(status: number, payload: Uint8Array): void {
    if (!this.#wiring.holes) throw new ProtocolError("stream hole on a stream that was not opened sparse");
    if (status !== MessageStatus.CONTINUE) throw new ProtocolError(`stream hole with status ${status}`);
    const { length, flags } = decode(streamHole, payload, "stream hole");
    if (length <= 0) throw new ProtocolError(`stream hole of ${length} bytes`);
    if (flags !== 0) throw new ProtocolError(`stream hole with flags 0x${flags.toString(16)}`);
    if (this.#ended || this.#aborting) return;
    let zeros = length;
    const waiter = this.#waiter;
    if (waiter) {
      const n = Math.min(zeros, waiter.target.length - waiter.filled);
      waiter.target.fill(0, waiter.filled, waiter.filled + n);
      waiter.filled += n;
      this.#holeBytesRead += n;
      zeros -= n;
      if (waiter.filled >= waiter.minBytes) {
        this.#waiter = undefined;
        waiter.resolve(waiter.filled);
      }
    }
    if (zeros === 0) return;
    const last = this.#held.at(-1);
    if (last?.zeros !== undefined) last.zeros += zeros;
    else this.#held.push({ zeros });
    this.#heldZeros += zeros;
  }

  /**
   * Takes data from the peer (a data frame's payload, or a piece of it): into the waiting read first,
   * the rest held for the next reads.
   *
   * @param piece The bytes: valid only during the call, unless it comes with a lease.
   * @param lease When given, the stream keeps what it holds as a view, retained under this lease until
   *   read; without one it copies what it holds.
   */
  receiveData(piece: Uint8Array, lease?: ChunkLease): void {
    if (this.#ended || this.#aborting || piece.length === 0) return;
    let at = 0;
    const waiter = this.#waiter;
    if (waiter) {
      at = Math.min(piece.length, waiter.target.length - waiter.filled);
      waiter.target.set(at === piece.length ? piece : piece.subarray(0, at), waiter.filled);
      waiter.filled += at;
      if (waiter.filled >= waiter.minBytes) {
        this.#waiter = undefined;
        waiter.resolve(waiter.filled);
      }
      if (at === piece.length) return;
    }
    const rest = at === 0 ? piece : piece.subarray(at);
    if (lease) {
      lease.retain();
      this.#held.push({ bytes: rest, lease });
    } else this.#held.push({ bytes: this.#wiring.hold(rest), lease: undefined });
    this.#heldBytes += rest.length;
    if (this.#heldBytes >= this.#highWaterBytes && !this.#paused) {
      this.#paused = true;
      this.#wiring.pauseChannel();
    }
  }

  #control(status: number, payload: Uint8Array): void {
    if (this.#ended) return;
    if (status === MessageStatus.CONTINUE) {
      // End of data (an empty CONTINUE): say we agree, and wait for the peer's confirmation.
      if (payload.length === 0) void this.#wiring.send(MessageStatus.OK).catch((error) => this.fail(error));
      return;
    }
    if (status === MessageStatus.OK) return this.#end();
    if (status === MessageStatus.ERROR) {
      return this.fail(payload.length > 0 ? this.#wiring.mapError(payload) : new ConnectError("The peer aborted the stream", { driver: "remote" }));
    }
    this.fail(new ProtocolError(`stream frame with status ${status}`));
  }

  #copyHeld(target: Uint8Array): number {
    let filled = 0;
    let zeros = 0;
    while (filled < target.length && this.#held.length > 0) {
      const first = this.#held[0]!;
      if (first.zeros !== undefined) {
        const n = Math.min(first.zeros, target.length - filled);
        target.fill(0, filled, filled + n);
        filled += n;
        zeros += n;
        first.zeros -= n;
        if (first.zeros === 0) this.#held.shift();
        continue;
      }
      const bytes = first.bytes;
      const n = Math.min(bytes.length, target.length - filled);
      target.set(n === bytes.length ? bytes : bytes.subarray(0, n), filled);
      filled += n;
      if (n === bytes.length) {
        this.#held.shift();
        this.#let(first);
      } else first.bytes = bytes.subarray(n);
    }
    this.#heldBytes -= filled - zeros;
    this.#heldZeros -= zeros;
    this.#holeBytesRead += zeros;
    if (this.#heldBytes < this.#highWaterBytes / 2) this.#resume();
    return filled;
  }

  /**
   * Sends data (upload), in frames of at most {@linkcode STREAM_CHUNK_BYTES}; resolves once the socket
   * took it.
   *
   * @param bytes The data; not retained after the promise resolves.
   */
  async write(bytes: Uint8Array): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#ended) throw new ConnectError("Cannot write to a stream that has ended", { driver: "remote" });
    for (let at = 0; at < bytes.length; at += STREAM_CHUNK_BYTES) {
      // A view is enough: the frame encoder copies the bytes into the message.
      await this.#wiring.send(MessageStatus.CONTINUE, bytes.subarray(at, Math.min(bytes.length, at + STREAM_CHUNK_BYTES)));
      if (this.#failure !== undefined) throw this.#failure;
    }
  }

  /** Ends an upload: sends the end (empty OK) and waits for the server's confirmation or error. */
  async finish(): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    if (!this.#ended) await this.#wiring.send(MessageStatus.OK);
    return this.#finished;
  }

  /** Aborts: sends an empty ERROR frame and waits for the peer's OK (errors of the abort itself are dropped). */
  async abort(): Promise<void> {
    if (this.#ended) return;
    // Nobody reads any more: held data is dropped, data still on its way too, and the socket reads
    // again (paused at the high-water mark, it would never bring the peer's answer).
    this.#aborting = true;
    this.#drop();
    this.#resume();
    await this.#wiring.send(MessageStatus.ERROR).catch(() => {});
    await this.#finished.catch(() => {});
  }

  /**
   * Ends the stream with an error (connection lost, peer's ERROR frame). Data held and not read is
   * dropped.
   *
   * @param error What readers and writers get.
   */
  fail(error: unknown): void {
    if (this.#ended) return;
    this.#failure = error;
    this.#ended = true;
    this.#drop();
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(error);
    this.#resume();
    this.#finishing?.reject(error);
    this.#wiring.done();
  }

  /** Drops the data held. */
  #drop(): void {
    for (const held of this.#held.splice(0)) if (held.zeros === undefined) this.#let(held);
    this.#heldBytes = 0;
    this.#heldZeros = 0;
  }

  /** Gives held data's memory back: its lease, or its pooled copy. */
  #let(held: Held & { zeros?: undefined }): void {
    if (held.lease) held.lease.release();
    else this.#wiring.release(held.bytes);
  }

  #end(): void {
    this.#ended = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    // What a read waiting for more has got so far; its next read returns 0.
    waiter?.resolve(waiter.filled);
    this.#resume();
    this.#finishing?.resolve();
    this.#wiring.done();
  }

  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#wiring.resumeChannel();
  }
}
