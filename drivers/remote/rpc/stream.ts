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
 * view of a read of `readable`): straight from the receive buffer when a read is waiting, otherwise
 * from the frame's pooled buffer, held until read. Held bytes are never views into the receive
 * buffer (the next socket read reuses it); pooled buffers go back to the pool once read.
 *
 * @module
 */
import { ConnectError } from "../../../core/errors.ts";
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
  /** Gives a held or owned buffer back to the pool once its bytes were read. */
  release(bytes: Uint8Array): void;
  /** Decodes the `remote_error` of an ERROR frame. */
  mapError(payload: Uint8Array): Error;
  /** Called once the stream has ended either way. */
  done(): void;
}

/** Default bytes queued before the socket is paused (it reads again below half of that). */
const HIGH_WATER_BYTES = 8 * 1024 * 1024;

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
  /** Data received and not yet read, in order: pooled buffers (or views into them) of this stream's own. */
  readonly #held: Uint8Array[] = [];
  #heldBytes = 0;
  /** A read waiting for data: the next frame is copied straight into its target. */
  #waiter: { target: Uint8Array; resolve: (bytes: number) => void; reject: (error: unknown) => void } | undefined;
  #paused = false;
  #ended = false;
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
        const n = await this.read(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
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
    return this.#heldBytes;
  }

  /** Resolves when both sides agreed the stream is over; rejects with the peer's error. */
  get finished(): Promise<void> {
    return this.#finished;
  }

  /**
   * Copies incoming data into `target`: what is held at once, else the next frame as it arrives.
   * One read at a time.
   *
   * @param target Where to put the bytes.
   * @returns How many bytes were put there; 0 once the stream has ended (or when `target` is empty).
   * @throws {VirtError} The peer's error, or a `ConnectError` when the connection or the stream broke.
   */
  read(target: Uint8Array): Promise<number> {
    if (this.#heldBytes > 0 && target.length > 0) return Promise.resolve(this.#copyHeld(target));
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#ended || target.length === 0) return Promise.resolve(0);
    if (this.#waiter) return Promise.reject(new TypeError("RpcStream.read(): a read is already waiting"));
    this.#resume();
    return new Promise((resolve, reject) => void (this.#waiter = { target, resolve, reject }));
  }

  /**
   * Handles one STREAM frame from the peer (called by the client).
   *
   * @param status The frame's status.
   * @param payload Its bytes: valid only during the call unless `owned`.
   * @param owned Whether the payload is a pooled buffer of this frame's own: the stream then keeps it
   *   and gives it back through `wiring.release` (the caller must not).
   * @returns `owned`: whether the stream took the payload's buffer.
   */
  receive(status: number, payload: Uint8Array, owned = false): boolean {
    if (status === MessageStatus.CONTINUE && payload.length > 0 && !this.#ended && this.#failure === undefined) {
      this.#take(payload, owned);
      return owned;
    }
    try {
      this.#control(status, payload);
    } finally {
      if (owned) this.#wiring.release(payload);
    }
    return owned;
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

  /** Data: into the waiting read first, the rest held (in the frame's own buffer, or a pooled copy). */
  #take(payload: Uint8Array, owned: boolean): void {
    let at = 0;
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      at = Math.min(payload.length, waiter.target.length);
      waiter.target.set(payload.subarray(0, at));
      waiter.resolve(at);
    }
    if (at === payload.length) {
      if (owned) this.#wiring.release(payload);
      return;
    }
    const rest = payload.subarray(at);
    this.#held.push(owned ? rest : this.#wiring.hold(rest));
    this.#heldBytes += rest.length;
    if (this.#heldBytes >= this.#highWaterBytes && !this.#paused) {
      this.#paused = true;
      this.#wiring.pauseChannel();
    }
  }

  #copyHeld(target: Uint8Array): number {
    let filled = 0;
    while (filled < target.length && this.#held.length > 0) {
      const first = this.#held[0]!;
      const n = Math.min(first.length, target.length - filled);
      target.set(first.subarray(0, n), filled);
      filled += n;
      if (n === first.length) {
        this.#held.shift();
        this.#wiring.release(first);
      } else this.#held[0] = first.subarray(n);
    }
    this.#heldBytes -= filled;
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
    for (const held of this.#held.splice(0)) this.#wiring.release(held);
    this.#heldBytes = 0;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(error);
    this.#resume();
    this.#finishing?.reject(error);
    this.#wiring.done();
  }

  #end(): void {
    this.#ended = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.resolve(0);
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
