/**
 * One libvirt data stream (volume upload/download), as its opener sees it. Every STREAM frame echoes the
 * procedure and serial of the CALL that opened the stream. Data goes as STATUS CONTINUE frames of at
 * most {@linkcode STREAM_CHUNK_BYTES}; an empty CONTINUE from the sender marks the end of data; the
 * receiver of that then sends an empty OK and the other side confirms with OK. An empty ERROR from the
 * client aborts; an ERROR from the server carries a `remote_error`. Observed against libvirtd 9.0
 * (reference/libvirt-rpc.md §10).
 *
 * Backpressure: outgoing data waits for the socket to drain; incoming data is queued up to
 * `highWaterBytes`, then the socket is paused until the reader catches up.
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
 *   pauseChannel() {}, resumeChannel() {}, mapError: () => new Error("x"), done() {} });
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
  #controller!: ReadableByteStreamController;
  #paused = false;
  #ended = false;
  #finishing: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  #finished: Promise<void>;
  #failure: unknown;

  /**
   * @param wiring The connection side.
   * @param highWaterBytes Incoming bytes queued before the socket pauses.
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
      start: (controller) => void (this.#controller = controller),
      // Called whenever the queue is below the mark: the moment to read the socket again.
      pull: () => this.#resume(),
      cancel: () => this.abort(),
    }, { highWaterMark: highWaterBytes / 2 });
  }

  /** Incoming bytes queued and not yet read: what a reader can take now without waiting for the socket. */
  get bufferedBytes(): number {
    const desired = this.#controller.desiredSize;
    return desired === null ? 0 : Math.max(0, this.#highWaterBytes / 2 - desired);
  }

  /** Resolves when both sides agreed the stream is over; rejects with the peer's error. */
  get finished(): Promise<void> {
    return this.#finished;
  }

  /**
   * Handles one STREAM frame from the peer (called by the client).
   *
   * @param status The frame's status.
   * @param payload Its bytes.
   * @param owned Whether the payload's buffer belongs to this frame alone (then it is passed on as it is).
   */
  receive(status: number, payload: Uint8Array, owned = false): void {
    if (this.#ended) return;
    if (status === MessageStatus.CONTINUE) {
      if (payload.length === 0) {
        // End of data: say we agree, and wait for the peer's confirmation.
        void this.#wiring.send(MessageStatus.OK).catch((error) => this.fail(error));
        return;
      }
      if (this.#failure !== undefined) return;
      // enqueue() transfers the chunk's whole ArrayBuffer: a view into a socket buffer is copied first
      // (a Node Buffer's slice() would be a view too); a frame assembled into its own buffer is not.
      const chunk = (owned ? payload : new Uint8Array(payload)) as Uint8Array<ArrayBuffer>;
      this.#controller.enqueue(chunk);
      // desiredSize is the mark less what is queued: pause once twice the mark is queued.
      if ((this.#controller.desiredSize ?? 0) <= -this.#highWaterBytes / 2 && !this.#paused) {
        this.#paused = true;
        this.#wiring.pauseChannel();
      }
      return;
    }
    if (status === MessageStatus.OK) return this.#end();
    if (status === MessageStatus.ERROR) {
      return this.fail(payload.length > 0 ? this.#wiring.mapError(payload) : new ConnectError("The peer aborted the stream", { driver: "remote" }));
    }
    this.fail(new ProtocolError(`stream frame with status ${status}`));
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
   * Ends the stream with an error (connection lost, peer's ERROR frame).
   *
   * @param error What readers and writers get.
   */
  fail(error: unknown): void {
    if (this.#ended) return;
    this.#failure = error;
    this.#ended = true;
    try {
      this.#controller.error(error);
    } catch {
      // already closed by the reader
    }
    this.#resume();
    this.#finishing?.reject(error);
    this.#wiring.done();
  }

  #end(): void {
    this.#ended = true;
    try {
      this.#controller.close();
    } catch {
      // the reader cancelled
    }
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
