/**
 * Opens the socket of a {@linkcode RemoteTarget}: a Unix socket, TCP, or TLS with an x509 client
 * certificate (libvirt's pkipath layout), as a {@linkcode ByteChannel}.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import net from "node:net";
import tls from "node:tls";
import { ConnectError } from "../../core/errors.ts";
import { type ByteChannel, channelFromSocket, ReceiveBuffer } from "./rpc/channel.ts";
import type { RemoteTarget } from "./uri.ts";

/**
 * Connects.
 *
 * @param target Where to.
 * @param signal Stops connecting.
 * @returns The connected channel.
 * @throws {ConnectError} When the socket cannot be reached or the TLS handshake fails.
 * @example
 * ```ts
 * import { openTransport } from "./transport.ts";
 * let code = "";
 * try { await openTransport({ transport: "unix", socketPath: "/nonexistent/sock", name: "test:///default", readOnly: false }); }
 * catch (error) { code = (error as { code: string }).code; }
 * if (code !== "connect-failed") throw new Error("unexpected");
 * ```
 */
export async function openTransport(target: RemoteTarget, signal?: AbortSignal): Promise<ByteChannel> {
  signal?.throwIfAborted();
  const where = target.transport === "unix" ? target.socketPath : `${target.host}:${target.port}`;
  let socket: net.Socket;
  let ready: string;
  let reads: ReceiveBuffer | undefined;
  if (target.transport === "tls") {
    let files: [Buffer, Buffer, Buffer];
    try {
      files = await Promise.all([readFile(target.pki.caFile), readFile(target.pki.certFile), readFile(target.pki.keyFile)]);
    } catch (error) {
      throw new ConnectError(`Cannot connect to ${where}: cannot read the TLS certificates: ${(error as Error).message}`, { driver: "remote", cause: error });
    }
    socket = tls.connect({ host: target.host, port: target.port, ca: files[0], cert: files[1], key: files[2], rejectUnauthorized: target.verify, servername: net.isIP(target.host) ? undefined : target.host });
    ready = "secureConnect";
  } else {
    // One receive buffer read into again and again (node:tls has no such option: TLS reads stay events).
    reads = new ReceiveBuffer();
    const onread = reads.onread as net.OnReadOpts;
    socket = target.transport === "unix"
      ? net.createConnection({ path: target.socketPath, onread })
      : net.createConnection({ host: target.host, port: target.port, onread });
    ready = "connect";
  }
  await new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      socket.destroy();
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.once(ready, () => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    });
    socket.once("error", (error) => {
      signal?.removeEventListener("abort", onAbort);
      reject(new ConnectError(`Cannot connect to ${where}: ${error.message}`, { driver: "remote", cause: error }));
    });
  });
  if (target.transport === "tls") await readTlsConfirmation(socket, where, signal);
  return channelFromSocket(socket, reads);
}

/**
 * libvirt's TLS servers (libvirtd, virtkitd) send one byte, 1, once they have accepted the client's
 * certificate; the RPC stream starts after it. libvirt's own client waits for it too.
 */
function readTlsConfirmation(socket: net.Socket, where: string, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (error?: Error) => {
      socket.off("readable", onReadable);
      socket.off("close", onClose);
      signal?.removeEventListener("abort", onAbort);
      if (error) {
        socket.destroy();
        reject(error);
      } else resolve();
    };
    const onReadable = () => {
      const byte = socket.read(1) as Buffer | null;
      if (byte === null) return;
      done(byte[0] === 1 ? undefined : new ConnectError(`Cannot connect to ${where}: the TLS confirmation byte is ${byte[0]}, not 1`, { driver: "remote" }));
    };
    const onClose = () => done(new ConnectError(`Cannot connect to ${where}: the server closed the connection after the TLS handshake (certificate refused?)`, { driver: "remote" }));
    const onAbort = () => done(signal!.reason as Error);
    socket.on("readable", onReadable);
    socket.once("close", onClose);
    signal?.addEventListener("abort", onAbort, { once: true });
    onReadable();
  });
}
