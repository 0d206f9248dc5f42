/**
 * The byte pipe an RPC peer talks through, and its implementation over a `node:net` or `node:tls`
 * socket. The client and the daemon see only {@linkcode ByteChannel}, so tests can hand them any pipe.
 *
 * @module
 */
import type { Socket } from "node:net";
import type { ReceiveBuffer } from "./receive_buffer.ts";

export { RECEIVE_BUFFER_BYTES, ReceiveBuffer } from "./receive_buffer.ts";

/**
 * Lets the receiver of a chunk keep views into it past the call: `retain()` before the call returns,
 * then `release()` once, when nothing reads those views any more. Until then the pipe reads nothing
 * into that memory.
 */
export interface ChunkLease {
  /** Keeps the chunk's memory from being read into again. */
  retain(): void;
  /** Gives back one `retain()`. */
  release(): void;
}

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
   * copies what it keeps, or, when the chunk comes with a lease, retains the lease instead.
   */
  onData(handler: (chunk: Uint8Array, lease?: ChunkLease) => void): void;
  /** Sets what runs once when the pipe ends: `error` when it failed, nothing for an orderly end. */
  onClose(handler: (error?: Error) => void): void;
  /** Stops delivering data until `resume()` (the receiver is full). */
  pause(): void;
  /** Delivers data again. */
  resume(): void;
  /** Closes the pipe; pending writes are dropped. */
  close(): void;
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
