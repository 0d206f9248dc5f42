/**
 * The byte pipe an RPC peer talks through, and its implementation over a `node:net` or `node:tls`
 * socket. The client and the daemon see only {@linkcode ByteChannel}, so tests can hand them any pipe.
 *
 * @module
 */
import type { Socket } from "node:net";

/** A bidirectional byte pipe with backpressure both ways. */
export interface ByteChannel {
  /** Sends bytes; resolves once the pipe can take more (its buffer drained). The pipe owns the bytes from then on. */
  write(bytes: Uint8Array): Promise<void>;
  /** Sets the receiver of incoming bytes (one at a time). */
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

/**
 * Wraps a connected socket.
 *
 * @param socket A connected `node:net` or `node:tls` socket.
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
export function channelFromSocket(socket: Socket): ByteChannel {
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
      const ok = socket.write(bytes);
      if (ok) return Promise.resolve();
      return new Promise((resolve) => drains.add(resolve));
    },
    onData(handler) {
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
