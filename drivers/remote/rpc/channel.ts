/**
 * The byte pipe an RPC peer talks through, and its implementation over a `node:net` or `node:tls`
 * socket. The client and the daemon see only {@linkcode ByteChannel}, so tests can hand them any pipe.
 *
 * @module
 */
import type { Socket } from "node:net";

/** A bidirectional byte pipe with backpressure both ways. */
export interface ByteChannel {
  /**
   * Sends bytes; the pipe owns them from then on. Returns nothing when the pipe can take more at once,
   * or a promise that resolves once it can (its buffer drained) and rejects when the pipe is closed.
   * (No promise in the common case: one per call showed in profiles.)
   */
  write(bytes: Uint8Array): Promise<void> | undefined;
  /**
   * Sets the receiver of incoming bytes (one at a time). A chunk is only valid during the call: the
   * pipe may read the next bytes into the same memory (see {@linkcode ReceiveBuffer}), so a receiver
   * copies what it keeps.
   */
  onData(handler: (chunk: Uint8Array) => void): void;
  /** Sets what runs once when the pipe ends: `error` when it failed, nothing for an orderly end. */
  onClose(handler: (error?: Error) => void): void;
  /** Stops delivering data until `resume()` (the receiver is full). */
  pause(): void;
  /** Delivers data again. */
  resume(): void;
  /** Closes the pipe; pending writes are dropped. */
  close(): void;
}

/** Default size of a {@linkcode ReceiveBuffer}: four of libvirt's 256 KiB data frames per read. */
export const RECEIVE_BUFFER_BYTES = 1024 * 1024;

/**
 * One buffer a socket reads into again and again (`node:net`'s `onread` option), instead of a fresh
 * buffer per read that the garbage collector then has to reclaim: a 512 MiB download made 8,192 of
 * them. Pass {@linkcode ReceiveBuffer.onread} to `net.createConnection()` and the same object to
 * {@linkcode channelFromSocket}.
 *
 * @example
 * ```ts
 * import { ReceiveBuffer } from "./channel.ts";
 * const reads = new ReceiveBuffer(64);
 * const seen: number[] = [];
 * reads.deliverTo((chunk) => seen.push(chunk.length));
 * reads.onread.buffer.set([1, 2, 3]);
 * reads.onread.callback(3, reads.onread.buffer);
 * if (seen.join() !== "3") throw new Error("unexpected");
 * ```
 */
export class ReceiveBuffer {
  /** The `onread` option of `net.createConnection()`. */
  readonly onread: { readonly buffer: Uint8Array; callback(bytes: number, buffer: Uint8Array): boolean };
  #handler: ((chunk: Uint8Array) => void) | undefined;
  /** Copies of what arrived before a receiver was set (a peer that speaks first). */
  #early: Uint8Array[] = [];

  /**
   * @param bytes Its size: the most one read returns.
   */
  constructor(bytes: number = RECEIVE_BUFFER_BYTES) {
    if (!Number.isSafeInteger(bytes) || bytes < 1) throw new RangeError(`Invalid receive buffer size ${bytes}`);
    const buffer = new Uint8Array(bytes);
    this.onread = {
      buffer,
      callback: (n, into) => {
        // Plain Uint8Array views (Node passes its Buffer back): code written for web bytes does not
        // expect a Buffer's slice() to share memory.
        const chunk = new Uint8Array(into.buffer, into.byteOffset, n);
        if (this.#handler) this.#handler(chunk);
        else this.#early.push(chunk.slice());
        return true;
      },
    };
  }

  /**
   * Sets the receiver of each read (only valid during its call).
   *
   * @param handler The receiver.
   */
  deliverTo(handler: (chunk: Uint8Array) => void): void {
    this.#handler = handler;
    const early = this.#early;
    this.#early = [];
    for (const chunk of early) handler(chunk);
  }
}

/**
 * Wraps a connected socket.
 *
 * @param socket A connected `node:net` or `node:tls` socket.
 * @param reads The receive buffer the socket was created with (its `onread` option); without one,
 *   data comes from `data` events, a fresh buffer per read.
 * @returns The channel.
 * @example
 * ```ts
 * import net from "node:net";
 * import { channelFromSocket } from "./channel.ts";
 * const channel = channelFromSocket(new net.Socket());
 * if (typeof channel.write !== "function") throw new Error("unexpected");
 * channel.close();
 * ```
 */
export function channelFromSocket(socket: Socket, reads?: ReceiveBuffer): ByteChannel {
  let closeHandler: ((error?: Error) => void) | undefined;
  let closed: { error?: Error } | undefined;
  let failure: Error | undefined;
  const drains = new Set<() => void>();
  socket.setNoDelay?.(true);
  socket.on("error", (error) => (failure ??= error));
  socket.on("close", () => {
    closed = failure ? { error: failure } : {};
    for (const done of [...drains]) done();
    drains.clear();
    closeHandler?.(closed.error);
  });
  socket.on("drain", () => {
    for (const done of [...drains]) done();
    drains.clear();
  });
  return {
    write(bytes) {
      if (closed || socket.destroyed) return Promise.reject(failure ?? new Error("socket is closed"));
      if (socket.write(bytes)) return undefined;
      return new Promise((resolve) => drains.add(resolve));
    },
    onData(handler) {
      if (reads) return reads.deliverTo(handler);
      // Plain Uint8Array views: a Node Buffer's slice() shares memory, which code written for web bytes
      // does not expect.
      socket.on("data", (chunk: Uint8Array) => handler(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
    },
    onClose(handler) {
      closeHandler = handler;
      if (closed) handler(closed.error);
    },
    pause: () => void socket.pause(),
    resume: () => void socket.resume(),
    close: () => void socket.destroy(),
  };
}
