/**
 * A client's bounded send queue. Replies and events are written at once (the socket buffers them); a
 * client that stops reading lets that buffer grow, and once it passes `maxBacklogBytes` the client is
 * disconnected instead of being buffered without bound (issue 13: a slow consumer costs bounded memory).
 * Stream producers (volume downloads) wait for room with `whenWritable()` and so never trip the limit.
 *
 * The first frame of a tick is written at once (a reply to a lone call pays no delay); when more follow
 * in the same tick (one client's pipelined calls answered together, an event fanned out to several of
 * its registrations) the socket is corked from the second frame on and uncorked once the tick's
 * callbacks and promise jobs have run, so the burst leaves in one `writev` instead of a syscall each.
 *
 * @module
 */
import process from "node:process";

/** The part of a socket the outbox needs (a `node:net` or `node:tls` socket has it). */
export interface OutboxSocket {
  /** Bytes queued but not yet sent. */
  readonly writableLength: number;
  /** Whether the socket can still be written. */
  readonly writable: boolean;
  /** Queues bytes. */
  write(chunk: Uint8Array): boolean;
  /** Closes the socket at once. */
  destroy(error?: Error): void;
  /** `drain` fires once the queue has emptied. */
  once(event: "drain" | "close", listener: () => void): unknown;
  /** Removes a listener added with `once`. */
  off(event: "drain" | "close", listener: () => void): unknown;
  /** Holds writes in memory until `uncork` (a socket has it; test doubles may leave it out). */
  cork?(): void;
  /** Writes what `cork` held, in one go. */
  uncork?(): void;
}

/** Options of {@linkcode createOutbox}. */
export interface OutboxOptions {
  /** Backlog above which the client is disconnected (default 8 MiB, half of one max-size frame). */
  readonly maxBacklogBytes?: number;
  /** Backlog under which `whenWritable()` resolves (default 1 MiB). */
  readonly lowWaterBytes?: number;
  /** Called once when the client is cut off for its backlog (for the log line). */
  readonly onOverflow?: (backlogBytes: number) => void;
}

/** A client's send queue. */
export interface Outbox {
  /**
   * Sends one frame. Returns false (and sends nothing) once the client is gone or was cut off.
   */
  send(frame: Uint8Array): boolean;
  /** Resolves when the backlog is under the low-water mark (at once when it is); rejects once closed. */
  whenWritable(): Promise<void>;
  /** Bytes waiting in the socket. */
  readonly backlogBytes: number;
  /** Whether the client was disconnected for its backlog. */
  readonly overflowed: boolean;
}

/** The default disconnect threshold, in bytes. */
export const DEFAULT_MAX_BACKLOG_BYTES = 8 * 1024 * 1024;

/**
 * Creates the outbox of one client.
 *
 * @param socket The client's socket.
 * @param options Limits and the overflow callback.
 * @returns The outbox.
 * @example
 * ```ts
 * import { createOutbox } from "./outbox.ts";
 * // A socket that never sends: its queue only grows.
 * let queued = 0, destroyed = false;
 * const socket = {
 *   get writableLength() { return queued; }, get writable() { return !destroyed; },
 *   write(chunk: Uint8Array) { queued += chunk.byteLength; return false; },
 *   destroy() { destroyed = true; }, once() {}, off() {},
 * };
 * const outbox = createOutbox(socket, { maxBacklogBytes: 1000 });
 * for (let i = 0; i < 20; i++) outbox.send(new Uint8Array(100));
 * if (!destroyed || !outbox.overflowed || queued > 1100) throw new Error("a stalled client must be cut off");
 * ```
 */
export function createOutbox(socket: OutboxSocket, options: OutboxOptions = {}): Outbox {
  const maxBacklog = options.maxBacklogBytes ?? DEFAULT_MAX_BACKLOG_BYTES;
  const lowWater = options.lowWaterBytes ?? Math.min(1024 * 1024, maxBacklog / 2);
  let overflowed = false;
  // Frames sent in this tick; from the second on the socket is corked until the tick ends.
  let burst = 0;
  const endTick = () => {
    if (burst > 1) socket.uncork?.();
    burst = 0;
  };
  return {
    send(frame) {
      if (overflowed || !socket.writable) return false;
      // Corked bytes count in writableLength too, so the limit holds within a burst.
      if (socket.writableLength + frame.byteLength > maxBacklog) {
        overflowed = true;
        const backlog = socket.writableLength;
        socket.destroy();
        options.onOverflow?.(backlog);
        return false;
      }
      if (burst === 0) process.nextTick(endTick);
      else if (burst === 1) socket.cork?.();
      burst++;
      socket.write(frame);
      return true;
    },
    whenWritable() {
      if (overflowed || !socket.writable) return Promise.reject(new Error("The client is gone"));
      if (socket.writableLength <= lowWater) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          socket.off("close", onClose);
          resolve();
        };
        const onClose = () => {
          socket.off("drain", onDrain);
          reject(new Error("The client is gone"));
        };
        socket.once("drain", onDrain);
        socket.once("close", onClose);
      });
    },
    get backlogBytes() {
      return socket.writableLength;
    },
    get overflowed() {
      return overflowed;
    },
  };
}
