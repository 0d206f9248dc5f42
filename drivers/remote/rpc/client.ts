/**
 * The client end of libvirt's RPC protocol over one {@linkcode ByteChannel}: CALLs matched to REPLYs by
 * serial (many in flight at once), event MESSAGEs handed to listeners by procedure, keepalive (PONG to
 * every PING; PING after `keepaliveIntervalMs` of silence and close after `keepaliveCount` unanswered),
 * and STREAM frames routed to the {@linkcode RpcStream} their call opened. A protocol violation, a dead
 * peer or a closed socket rejects every pending call with a `ConnectError`.
 *
 * @module
 */
import { ConnectError } from "../../../core/errors.ts";
import type { ByteChannel, ChunkLease } from "./channel.ts";
import { decode } from "./codec.ts";
import { type ErrorContext, errorFromRemote } from "./errors.ts";
import { BufferPool } from "./buffer_pool.ts";
import { FrameDecoder, type FrameSink } from "./frame_decoder.ts";
import { encodeMessage, KEEPALIVE_PROGRAM, MESSAGE_MAX_BYTES, MessageStatus, MessageType, type Packet, type PacketHeader, encodePacket, REMOTE_PROGRAM } from "./packet.ts";
import { type Procedure, remoteError } from "./protocol/common.ts";
import { KeepaliveWatch } from "./keepalive.ts";
import { KEEPALIVE_PING, KEEPALIVE_PONG } from "./protocol/keepalive.ts";
import { ProtocolError } from "./protocol_error.ts";
import { RpcStream } from "./stream.ts";
import { WriteBatch } from "./write_batch.ts";
import { XdrReader } from "./xdr.ts";

/** Options of {@linkcode RpcClient}. */
export interface RpcClientOptions {
  /** Silence after which the client PINGs (0: never PING, still answer PINGs). Default 0. */
  keepaliveIntervalMs?: number;
  /** Unanswered PINGs after which the peer is declared dead. Default 5 (libvirt's). */
  keepaliveCount?: number;
  /** Largest incoming message (default 16 MiB, libvirt's limit). */
  maxMessageBytes?: number;
  /** Name used in error messages (the URI). */
  peerName?: string;
}

/** Per-call options. */
export interface CallOptions extends ErrorContext {
  /** Stops waiting (the reply, when it comes, is dropped). */
  signal?: AbortSignal;
}

/** Options of a stream-opening call. */
export interface StreamCallOptions extends CallOptions {
  /** The call asks for a sparse stream (libvirt's `SPARSE_STREAM` flag): the peer may send holes. */
  holes?: boolean;
}

interface Pending {
  readonly procedure: Procedure<unknown, unknown>;
  readonly context: ErrorContext;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  /** For calls that open a stream: the stream to route frames to after the reply. */
  readonly stream: RpcStream | undefined;
}

/**
 * Messages up to the size of one of libvirt's data frames (256 KiB of payload and the header) that span
 * socket reads are assembled in pooled buffers, and so are the copies of stream data held from a
 * channel that lends no memory (TLS, tests): a download holds at most the stream's high-water mark of
 * them (8 MiB, 32 frames). Data frames themselves are streamed, not assembled (frame_decoder.ts).
 */
const POOLED_FRAME_BYTES = 260 * 1024;
const POOLED_FRAMES_KEPT = 40;

/** Receives one event MESSAGE of a procedure, decoded. */
export type MessageListener<T> = (body: T) => void;

/**
 * One libvirt RPC connection, client side.
 *
 * @example
 * ```ts
 * import { RpcClient } from "./client.ts";
 * import { CONNECT_SUPPORTS_FEATURE } from "./protocol/connect.ts";
 * import { encodePacket, FrameDecoder } from "./packet.ts";
 * import { encode } from "./codec.ts";
 * // A channel whose far end answers every CALL with "1".
 * let deliver: (b: Uint8Array) => void = () => {};
 * const decoder = new FrameDecoder();
 * const client = new RpcClient({
 *   async write(bytes) {
 *     for (const { header } of decoder.push(bytes.slice())) {
 *       queueMicrotask(() => deliver(encodePacket({ ...header, type: 1 }, encode(CONNECT_SUPPORTS_FEATURE.ret, 1))));
 *     }
 *   },
 *   onData(h) { deliver = h; }, onClose() {}, pause() {}, resume() {}, close() {},
 * });
 * if ((await client.call(CONNECT_SUPPORTS_FEATURE, 10)) !== 1) throw new Error("unexpected");
 * client.close();
 * ```
 */
export class RpcClient {
  readonly #channel: ByteChannel;
  readonly #decoder: FrameDecoder;
  readonly #pool = new BufferPool(POOLED_FRAME_BYTES, POOLED_FRAMES_KEPT);
  readonly #pending = new Map<number, Pending>();
  /** Serials whose caller stopped waiting: their late replies are dropped, not protocol errors. */
  readonly #abandoned = new Set<number>();
  readonly #streams = new Map<number, RpcStream>();
  // Keyed by program and procedure: virtkitd's own program numbers its messages from 1 too.
  readonly #listeners = new Map<string, Set<(payload: Uint8Array) => void>>();
  /** Programs besides REMOTE this client has called (virtkit's extension): their replies are accepted. */
  readonly #programs = new Set<number>([REMOTE_PROGRAM]);
  readonly #closeListeners = new Set<(error: ConnectError) => void>();
  readonly #peer: string;
  #serial = 0;
  /** CALLs and keepalive frames, written together per turn of the event loop. */
  readonly #batch: WriteBatch;
  #closed: ConnectError | undefined;
  readonly #keepalive = new KeepaliveWatch({
    ping: () => this.#batch.post(encodePacket({ program: KEEPALIVE_PROGRAM, version: 1, procedure: KEEPALIVE_PING.number, type: MessageType.MESSAGE, serial: 0, status: MessageStatus.OK })),
    dead: (reason) => this.#fail(new ConnectError(`Connection to ${this.#peer} closed: ${reason}`, { driver: "remote" })),
  });

  /**
   * @param channel The connected pipe.
   * @param options Keepalive, message limit and name.
   */
  constructor(channel: ByteChannel, options: RpcClientOptions = {}) {
    this.#channel = channel;
    this.#batch = new WriteBatch(channel, this.#onWriteError);
    this.#peer = options.peerName ?? "libvirt peer";
    this.#decoder = new FrameDecoder(options.maxMessageBytes ?? MESSAGE_MAX_BYTES, this.#pool);
    channel.onData((chunk, lease) => this.#onData(chunk, lease));
    channel.onClose((error) => this.#fail(new ConnectError(`Connection to ${this.#peer} closed${error ? `: ${error.message}` : ""}`, { driver: "remote", cause: error })));
    const intervalMs = options.keepaliveIntervalMs ?? 0;
    if (intervalMs > 0) this.startKeepalive(intervalMs, options.keepaliveCount ?? 5);
  }

  /** Whether the connection has ended. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** Calls in flight. */
  get pendingCalls(): number {
    return this.#pending.size;
  }

  /** Streams opened and not yet ended (an upload or download in progress). */
  get openStreams(): number {
    return this.#streams.size;
  }

  /**
   * Sends a CALL and resolves with its decoded REPLY.
   *
   * @param procedure What to call.
   * @param args Its arguments.
   * @param options Signal, and the object and operation for error messages.
   * @returns The reply.
   * @throws {VirtError} Mapped from the peer's `remote_error` (see `errorFromRemote`).
   * @throws {ConnectError} When the connection ends or breaks the protocol first.
   */
  call<A, R>(procedure: Procedure<A, R>, args: A, options: CallOptions = {}): Promise<R> {
    return this.#send(procedure, args, options, undefined) as Promise<R>;
  }

  /**
   * Sends a CALL that opens a stream (upload, download) and resolves with the stream once the REPLY
   * arrived. STREAM frames from the peer are routed to it from then on.
   *
   * @param procedure The stream-opening call.
   * @param args Its arguments.
   * @param options Signal, error context, and whether the call asked for holes.
   * @returns The stream.
   */
  async openStream<A>(procedure: Procedure<A, void>, args: A, options: StreamCallOptions = {}): Promise<RpcStream> {
    const serial = this.#serial;
    const stream = new RpcStream({
      procedure: procedure.number,
      serial,
      holes: options.holes === true,
      send: (status, payload) => this.#write(encodePacket({ program: procedure.program, version: procedure.version, procedure: procedure.number, type: MessageType.STREAM, serial, status }, payload)),
      hold: (bytes) => {
        const copy = this.#pool.acquire(bytes.length);
        copy.set(bytes);
        return copy;
      },
      release: (bytes) => this.#pool.release(bytes),
      pauseChannel: () => this.#channel.pause(),
      resumeChannel: () => this.#channel.resume(),
      mapError: (payload) => this.#remoteError(payload, options),
      done: () => this.#streams.delete(serial),
    });
    // Registered before the CALL goes out: data may follow the reply in the same socket read.
    this.#streams.set(serial, stream);
    try {
      await this.#send(procedure, args, options, stream);
    } catch (error) {
      this.#streams.delete(serial);
      throw error;
    }
    return stream;
  }

  /**
   * Listens to event MESSAGEs of one procedure.
   *
   * A body that does not decode is the peer's fault and ends the connection (ProtocolError); a listener
   * that throws is this process's, so it is reported on stderr and the connection and the other
   * listeners go on, as the event bus does for its listeners.
   *
   * @param procedure The event's declaration.
   * @param listener Gets each decoded body.
   * @returns Unsubscribes.
   */
  onMessage<T>(procedure: Procedure<T, unknown>, listener: MessageListener<T>): () => void {
    const raw = (payload: Uint8Array) => {
      const body = decode(procedure.args, payload, procedure.name);
      try {
        listener(body);
      } catch (error) {
        console.error(`A listener of ${procedure.name} from ${this.#peer} threw:`, error);
      }
    };
    const key = `${procedure.program}:${procedure.number}`;
    this.#programs.add(procedure.program);
    let set = this.#listeners.get(key);
    if (!set) this.#listeners.set(key, (set = new Set()));
    set.add(raw);
    return () => set!.delete(raw);
  }

  /**
   * Runs `listener` once when the connection ends, with the error pending calls got.
   *
   * @param listener Gets the `ConnectError`.
   * @returns Unsubscribes.
   */
  onClose(listener: (error: ConnectError) => void): () => void {
    if (this.#closed) {
      listener(this.#closed);
      return () => {};
    }
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  /** Closes the connection; pending calls are rejected with `ConnectError`. */
  close(): void {
    this.#fail(new ConnectError(`Connection to ${this.#peer} was closed`, { driver: "remote" }));
  }

  #send(procedure: Procedure<unknown, unknown> | Procedure<never, unknown>, args: unknown, options: CallOptions, stream: RpcStream | undefined): Promise<unknown> {
    if (this.#closed) return Promise.reject(this.#closed);
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const p = procedure as Procedure<unknown, unknown>;
    this.#programs.add(p.program);
    const serial = this.#serial;
    let frame: Uint8Array;
    try {
      frame = encodeMessage({ program: p.program, version: p.version, procedure: p.number, type: MessageType.CALL, serial, status: MessageStatus.OK }, p.args, args);
    } catch (error) {
      // Arguments that do not fit their codec: a rejection like any other failure, never a throw.
      return Promise.reject(error);
    }
    this.#serial = (this.#serial + 1) >>> 0;
    // No closures per call beyond the promise's own (they showed in profiles of sequential calls);
    // only a call with a signal gets an abort listener.
    const promise = new Promise((resolve, reject) => void this.#pending.set(serial, { procedure: p, context: options, resolve, reject, stream }));
    if (signal) this.#watchAbort(serial, signal);
    this.#batch.post(frame);
    return promise;
  }

  #watchAbort(serial: number, signal: AbortSignal): void {
    const call = this.#pending.get(serial)!;
    const onAbort = () => {
      if (!this.#pending.delete(serial)) return;
      this.#abandoned.add(serial);
      call.reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    const done = () => signal.removeEventListener("abort", onAbort);
    this.#pending.set(serial, { ...call, resolve: (v) => (done(), call.resolve(v)), reject: (e) => (done(), call.reject(e)) });
  }

  readonly #onWriteError = (error: unknown): void => {
    this.#fail(new ConnectError(`Cannot write to ${this.#peer}: ${(error as Error).message}`, { driver: "remote", cause: error }));
  };

  /** Writes a frame whose drain the caller waits for (stream data: backpressure), after what is queued. */
  #write(frame: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closed);
    this.#batch.flush();
    const drained = this.#channel.write(frame);
    if (!drained) return Promise.resolve();
    return drained.catch((error: unknown) => {
      this.#onWriteError(error);
      throw this.#closed;
    });
  }

  /** The lease of the chunk being decoded (stream data held past the read is retained under it). */
  #lease: ChunkLease | undefined;
  /** Where the decoder puts messages and data pieces, in wire order (one object: no closures per read). */
  readonly #sink: FrameSink = {
    packet: (packet) => {
      if (this.#closed) return;
      this.#dispatch(packet);
      // An assembled frame goes back to the pool once handled: nothing keeps a message's payload.
      if (packet.owned) this.#decoder.release(packet);
    },
    data: (header, piece) => {
      if (this.#closed) return;
      this.#streamOf(header)?.receiveData(piece, this.#lease);
    },
  };

  #onData(chunk: Uint8Array, lease: ChunkLease | undefined): void {
    if (this.#closed) return;
    this.#keepalive.heard();
    this.#lease = lease;
    try {
      this.#decoder.feed(chunk, this.#sink);
    } catch (error) {
      const failure = error instanceof ConnectError ? error : new ProtocolError(`Bad message from ${this.#peer}: ${(error as Error).message}`, { cause: error });
      this.#fail(failure);
    } finally {
      this.#lease = undefined;
    }
  }

  /** The stream a STREAM frame is for; undefined for a stream whose caller stopped waiting. */
  #streamOf(header: PacketHeader): RpcStream | undefined {
    if (header.program === KEEPALIVE_PROGRAM) throw new ProtocolError(`keepalive message of type ${header.type}`);
    if (!this.#programs.has(header.program)) throw new ProtocolError(`message for unknown program 0x${header.program.toString(16)}`);
    const stream = this.#streams.get(header.serial);
    if (!stream) {
      if (this.#abandoned.has(header.serial)) return undefined;
      throw new ProtocolError(`stream frame for serial ${header.serial}, which opened no stream`);
    }
    if (stream.procedure !== header.procedure) throw new ProtocolError(`stream frame for procedure ${header.procedure}, the stream's is ${stream.procedure}`);
    return stream;
  }

  /** Handles one whole message. */
  #dispatch({ header, payload }: Packet): void {
    if (header.program === KEEPALIVE_PROGRAM) {
      if (header.type !== MessageType.MESSAGE) throw new ProtocolError(`keepalive message of type ${header.type}`);
      if (header.procedure === KEEPALIVE_PING.number) {
        this.#batch.post(encodePacket({ program: KEEPALIVE_PROGRAM, version: 1, procedure: KEEPALIVE_PONG.number, type: MessageType.MESSAGE, serial: 0, status: MessageStatus.OK }));
      }
      return;
    }
    if (!this.#programs.has(header.program)) throw new ProtocolError(`message for unknown program 0x${header.program.toString(16)}`);
    switch (header.type) {
      case MessageType.REPLY:
        return this.#onReply(header.serial, header.program, header.procedure, header.status, payload);
      case MessageType.MESSAGE: {
        const listeners = this.#listeners.get(`${header.program}:${header.procedure}`);
        if (listeners) for (const listener of [...listeners]) listener(payload);
        return;
      }
      case MessageType.STREAM:
        return this.#streamOf(header)?.receive(header.status, payload);
      case MessageType.STREAM_HOLE:
        return this.#streamOf(header)?.receiveHole(header.status, payload);
      default:
        throw new ProtocolError(`unexpected message type ${header.type} from a server`);
    }
  }

  #onReply(serial: number, program: number, procedure: number, status: number, payload: Uint8Array): void {
    const call = this.#pending.get(serial);
    if (!call) {
      if (this.#abandoned.delete(serial)) return;
      throw new ProtocolError(`reply with serial ${serial}, for which no call is waiting`);
    }
    if (call.procedure.program !== program) throw new ProtocolError(`reply to serial ${serial} is for program 0x${program.toString(16)}, the call's is 0x${call.procedure.program.toString(16)}`);
    if (call.procedure.number !== procedure) throw new ProtocolError(`reply to serial ${serial} is for procedure ${procedure}, the call was ${call.procedure.number}`);
    // Decoded while the call is still pending: a malformed reply fails the connection, and with it this call.
    if (status === MessageStatus.OK) {
      const r = new XdrReader(payload);
      const value = call.procedure.ret.decode(r);
      // The name is put together only for the error: a string per reply showed in profiles.
      if (r.remaining !== 0) r.end(`the reply of ${call.procedure.name}`);
      this.#pending.delete(serial);
      return call.resolve(value);
    }
    if (status === MessageStatus.ERROR) {
      const error = this.#remoteError(payload, call.context);
      this.#pending.delete(serial);
      return call.reject(error);
    }
    throw new ProtocolError(`reply to ${call.procedure.name} has status ${status}`);
  }

  #remoteError(payload: Uint8Array, context: ErrorContext): Error {
    return errorFromRemote(decode(remoteError, payload, "remote_error"), context);
  }

  /**
   * Starts sending PINGs after `intervalMs` of silence, and closes the connection after `count` of them
   * went unanswered (libvirt's scheme; a client does this once the peer said it supports keepalive).
   *
   * @param intervalMs Silence before a PING.
   * @param count Unanswered PINGs that mean the peer is dead.
   * @throws {RangeError} For an interval that is not positive or a count below 1.
   */
  startKeepalive(intervalMs: number, count: number): void {
    this.#keepalive.start(intervalMs, count);
    if (this.#closed) this.#keepalive.stop();
  }

  #fail(error: ConnectError): void {
    if (this.#closed) return;
    this.#closed = error;
    this.#batch.stop();
    this.#keepalive.stop();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const call of pending) call.reject(error);
    for (const stream of [...this.#streams.values()]) stream.fail(error);
    this.#streams.clear();
    this.#channel.close();
    for (const listener of [...this.#closeListeners]) {
      try {
        listener(error);
      } catch {
        // a close listener's failure must not stop the others
      }
    }
    this.#closeListeners.clear();
  }
}
