/**
 * The byte pipe under an iSCSI session, and its one real implementation over `node:net` (Deno and Node
 * both have it). Tests can hand the session any other {@linkcode IscsiTransport}.
 *
 * @module
 */
import net from "node:net";
import { ConnectError } from "../../../core/errors.ts";

/** A connected, ordered byte stream to a target portal. */
export interface IscsiTransport {
  /** Queues bytes; they are sent in order. The caller may not change them until the command they belong to ends. */
  write(bytes: Uint8Array): void;
  /** Sends nothing more, then closes. */
  end(): void;
  /** Closes at once. */
  destroy(): void;
  /** Registers the receiver of every chunk, in order (called once). */
  onData(listener: (chunk: Uint8Array) => void): void;
  /** Registers what runs once when the stream ends for any reason; `error` when it failed. */
  onClose(listener: (error?: Error) => void): void;
  /** Groups writes into fewer segments until {@linkcode uncork}. */
  cork(): void;
  /** Sends what {@linkcode cork} held back. */
  uncork(): void;
}

/** Size of the one receive buffer per connection. */
const RECEIVE_BUFFER_BYTES = 1 << 20;

/** Where to connect. */
export interface PortalAddress {
  /** Host name or address. */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
}

/**
 * Connects over TCP, with `TCP_NODELAY` (PDUs are small and latency-bound) and a bounded wait.
 *
 * @param portal Host and port.
 * @param options `timeoutMs` for the TCP connect (default 10 s) and `signal`.
 * @returns The transport.
 * @throws {ConnectError} When the portal refuses, cannot be resolved or does not answer in time.
 * @example
 * ```ts
 * import { connectTcp } from "./transport.ts";
 * import { ConnectError } from "virtkit";
 * // Port 1 on loopback: nobody listens there.
 * const error = await connectTcp({ host: "127.0.0.1", port: 1 }).then(() => undefined, (e) => e);
 * if (!(error instanceof ConnectError)) throw new Error("unexpected");
 * ```
 */
export function connectTcp(portal: PortalAddress, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<IscsiTransport> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const where = `${portal.host}:${portal.port}`;
  return new Promise((resolve, reject) => {
    options.signal?.throwIfAborted();
    // One reused receive buffer: the socket reads up to 1 MiB per call into it (instead of a fresh 64 KiB
    // Buffer per read), and the session copies every chunk out before the callback returns.
    let deliver: ((chunk: Uint8Array) => void) | undefined;
    const early: Uint8Array[] = [];
    const socket = net.connect({
      host: portal.host,
      port: portal.port,
      onread: { buffer: new Uint8Array(RECEIVE_BUFFER_BYTES), callback: (bytes: number, buffer: Uint8Array) => {
          if (deliver) deliver(buffer.subarray(0, bytes));
          else early.push(buffer.slice(0, bytes)); // nobody listens yet: keep a copy, the buffer is reused
          return true;
        },
      },
    });
    const fail = (error: unknown) => {
      cleanup();
      socket.destroy();
      if (options.signal?.aborted) return reject(options.signal.reason);
      reject(new ConnectError(`Cannot connect to iSCSI portal ${where}: ${(error as Error).message}`, { driver: "iscsi", cause: error }));
    };
    const timer = setTimeout(() => fail(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const onAbort = () => fail(options.signal!.reason);
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("error", fail);
      options.signal?.removeEventListener("abort", onAbort);
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    socket.once("error", fail);
    socket.once("connect", () => {
      cleanup();
      socket.setNoDelay(true);
      resolve(socketTransport(socket, (listener) => {
        deliver = listener;
        for (const chunk of early.splice(0)) listener(chunk);
      }));
    });
  });
}

function socketTransport(socket: net.Socket, onRead: (listener: (chunk: Uint8Array) => void) => void): IscsiTransport {
  let failure: Error | undefined;
  socket.on("error", (error) => {
    failure ??= error;
  });
  return {
    write: (bytes) => void socket.write(bytes),
    end: () => void socket.end(),
    destroy: () => void socket.destroy(),
    onData: (listener) => onRead(listener),
    onClose: (listener) => void socket.once("close", () => listener(failure)),
    cork: () => socket.cork(),
    uncork: () => socket.uncork(),
  };
}
