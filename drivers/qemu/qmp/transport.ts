/**
 * What the QMP client talks through: a byte duplex. The real one is a unix socket (`node:net`, which
 * Node and Deno 2 both provide); tests use the in-memory fake peer from `./testing/mod.ts`.
 *
 * @module
 */
import { createConnection, type Socket } from "node:net";
import { ConnectError } from "../../../core/errors.ts";

/**
 * A byte duplex to a QMP server. The client takes a reader on `readable` and a writer on `writable`
 * once, and calls `close()` when it is done; `close()` must be idempotent and release the resource
 * even while a read is pending.
 */
export interface QmpTransport {
  /** Bytes from the server, in any chunking. Ends on hang-up; errors when the connection fails. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the server. A write rejects when the connection is gone. */
  readonly writable: WritableStream<Uint8Array>;
  /** Closes both directions and releases the connection. */
  close(): Promise<void>;
}

/** Options of {@linkcode connectUnixSocket}. */
export interface UnixSocketOptions {
  /** Aborting rejects with the signal's own reason and drops the half-open socket. */
  signal?: AbortSignal;
  /** Give up connecting after this long (default 10 000 ms). */
  timeoutMs?: number;
}

/**
 * Opens a unix socket (QEMU's `-qmp unix:PATH,server=on,wait=off`) as a {@linkcode QmpTransport}.
 *
 * @param path Socket path.
 * @param options Signal and timeout.
 * @returns The connected transport.
 * @throws {ConnectError} When the socket cannot be reached (`cause` holds the system error) or in time.
 * @throws {TypeError} When `path` is not a non-empty string.
 * @throws {RangeError} When `timeoutMs` is not a positive number.
 * @example A missing socket is a ConnectError
 * ```ts
 * import { connectUnixSocket } from "./transport.ts";
 * const failure = await connectUnixSocket("/nonexistent/qmp.sock").catch((error) => error);
 * if (failure.code !== "connect-failed") throw new Error("unexpected");
 * ```
 */
export function connectUnixSocket(path: string, options: UnixSocketOptions = {}): Promise<QmpTransport> {
  if (typeof path !== "string" || path === "") throw new TypeError("Invalid QMP socket path: expected a non-empty string");
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (!(timeoutMs > 0)) throw new RangeError(`Invalid timeoutMs ${timeoutMs}: expected a positive number`);
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<QmpTransport>((resolve, reject) => {
    const socket = createConnection({ path });
    const finish = (error?: unknown) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.off("connect", onConnect);
      socket.off("error", onError);
      if (error === undefined) return resolve(socketTransport(socket));
      socket.destroy();
      reject(error);
    };
    const onConnect = () => finish();
    const onError = (error: Error) =>
      finish(new ConnectError(`Cannot connect to QMP socket "${path}": ${error.message}`, { driver: "qemu", cause: error }));
    const onAbort = () => finish(signal!.reason);
    const timer = setTimeout(
      () => finish(new ConnectError(`Cannot connect to QMP socket "${path}": timed out after ${timeoutMs} ms`, { driver: "qemu" })),
      timeoutMs,
    );
    socket.once("connect", onConnect);
    socket.once("error", onError);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Wraps a connected socket; reading pauses the socket when the stream's queue is full (backpressure). */
function socketTransport(socket: Socket): QmpTransport {
  let readableOpen = true;
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  const readable = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        socket.on("data", (chunk: Uint8Array) => {
          if (!readableOpen) return;
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if ((controller.desiredSize ?? 0) <= 0) socket.pause();
        });
        socket.on("end", () => {
          if (readableOpen) controller.close();
          readableOpen = false;
        });
        // A listener must stay attached for the socket's lifetime: an 'error' without one kills the process.
        socket.on("error", (error) => {
          if (readableOpen) controller.error(error);
          readableOpen = false;
        });
        socket.on("close", () => {
          if (readableOpen) controller.close();
          readableOpen = false;
        });
      },
      pull() {
        socket.resume();
      },
      cancel() {
        readableOpen = false;
        socket.destroy();
      },
    },
    new CountQueuingStrategy({ highWaterMark: 16 }),
  );
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      return new Promise<void>((resolve, reject) => {
        if (socket.destroyed || !socket.writable) return reject(new Error("QMP socket is closed"));
        socket.write(chunk, (error) => (error ? reject(error) : resolve()));
      });
    },
    close() {
      // end() never calls back on a socket that is already gone; its 'close' covers that case.
      return Promise.race([new Promise<void>((resolve) => socket.end(() => resolve())), closed]);
    },
    abort() {
      socket.destroy();
    },
  });
  return {
    readable,
    writable,
    close() {
      readableOpen = false;
      socket.destroy();
      return closed;
    },
  };
}
