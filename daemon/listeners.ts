/**
 * The daemon's listening sockets: a Unix socket (mode 0600 by default, a stale socket file of a dead
 * daemon replaced, a live one refused), TCP with TLS and verified client certificates (libvirt's
 * `qemu+tls` x509 model), or plain TCP on loopback when explicitly asked.
 *
 * @module
 */
import { chmod, readFile, rm, stat } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import process from "node:process";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import type { ListenSpec, TlsFiles } from "./options.ts";

/** A client socket as the daemon sees it. */
export interface AcceptedSocket {
  /** The byte stream. */
  readonly socket: Socket | TLSSocket;
  /** Who connected, for the log line (`unix`, `127.0.0.1:40312`, plus the certificate subject's CN under TLS). */
  readonly peer: string;
  /** Whether the transport is secure in libvirt's sense (`virConnectIsSecure`): Unix or TLS, not plain TCP. */
  readonly secure: boolean;
}

/** Options of {@linkcode startListener}. */
export interface ListenerOptions {
  /** TLS files for TCP listeners; absent means plain TCP (the caller checked it is loopback). */
  readonly tls?: TlsFiles;
  /** Unix socket permission bits. */
  readonly socketMode: number;
  /** Gets every accepted client. */
  readonly onClient: (client: AcceptedSocket) => void;
}

/** One listening socket. */
export interface Listener {
  /** What it listens on, as `unix:PATH`, `tcp:HOST:PORT` or `tls:HOST:PORT` (the real port when 0 was asked). */
  readonly address: string;
  /** Stops accepting (clients already connected stay); removes the Unix socket file. */
  close(): Promise<void>;
}

/**
 * Starts listening.
 *
 * @param spec Where.
 * @param options TLS, socket mode and the client callback.
 * @returns The listener, once it accepts connections.
 * @throws {Error} When the address is in use (for a Unix socket: a live daemon answers on it), or the
 *   TLS files cannot be read.
 * @example
 * ```ts
 * import { mkdtempSync, rmSync, statSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { startListener } from "./listeners.ts";
 * const dir = mkdtempSync(join(tmpdir(), "vk-doc-"));
 * const path = join(dir, "s.sock");
 * try {
 *   const listener = await startListener({ kind: "unix", path }, { socketMode: 0o600, onClient: (c) => c.socket.end() });
 *   try {
 *     if ((statSync(path).mode & 0o777) !== 0o600 || listener.address !== `unix:${path}`) throw new Error("unexpected");
 *   } finally {
 *     await listener.close();
 *   }
 * } finally {
 *   rmSync(dir, { recursive: true, force: true });
 * }
 * ```
 */
export async function startListener(spec: ListenSpec, options: ListenerOptions): Promise<Listener> {
  if (spec.kind === "unix") return await listenUnix(spec.path, options);
  const secure = options.tls !== undefined;
  const server = secure ? await tlsServer(options.tls!, options.onClient) : createServer((socket) => {
    options.onClient({ socket, peer: `${socket.remoteAddress}:${socket.remotePort}`, secure: false });
  });
  await listenOn(server, () => server.listen({ host: spec.host, port: spec.port, exclusive: true }));
  const bound = server.address();
  const port = typeof bound === "object" && bound ? bound.port : spec.port;
  const host = spec.host.includes(":") ? `[${spec.host}]` : spec.host;
  return {
    address: `${secure ? "tls" : "tcp"}:${host}:${port}`,
    close: () => closeServer(server),
  };
}

const TLS_CONFIRMATION = Uint8Array.of(1);

async function tlsServer(files: TlsFiles, onClient: ListenerOptions["onClient"]): Promise<Server> {
  const [cert, key, ca] = await Promise.all([files.certFile, files.keyFile, files.caFile].map((f) => readFile(f)));
  // requestCert + rejectUnauthorized: the handshake fails unless the client shows a certificate the CA
  // signed, as libvirtd's tls_no_verify_certificate=0 default does. TLS 1.2 only: libvirt 9.0's client
  // reads the confirmation byte as soon as its socket is readable, and a TLS 1.3 session ticket sent
  // after the handshake makes that read fail with EAGAIN (seen with Deno's TLS stack).
  const server = createTlsServer({ cert, key, ca, requestCert: true, rejectUnauthorized: true, minVersion: "TLSv1.2", maxVersion: "TLSv1.2" });
  server.on("secureConnection", (socket: TLSSocket) => {
    // libvirt's x509 handshake ends with one confirmation byte from the server once it accepted the
    // client's certificate; libvirt clients wait for it ("Unable to read TLS confirmation").
    socket.write(TLS_CONFIRMATION);
    const subject = socket.getPeerCertificate()?.subject;
    const cn = subject && typeof subject.CN === "string" ? ` CN=${subject.CN}` : "";
    onClient({ socket, peer: `${socket.remoteAddress}:${socket.remotePort}${cn}`, secure: true });
  });
  // A failed handshake (no or a foreign certificate) only concerns that client.
  server.on("tlsClientError", () => {});
  return server;
}

async function listenUnix(path: string, options: ListenerOptions): Promise<Listener> {
  await removeStaleSocket(path);
  const server = createServer((socket) => options.onClient({ socket, peer: "unix", secure: true }));
  // Create the socket file without group/other bits, so no other user can connect in the window
  // before chmod (libvirtd sets its umask around bind() for the same reason).
  const previous = setUmask(0o177);
  try {
    await listenOn(server, () => server.listen({ path, exclusive: true }));
  } finally {
    if (previous !== undefined) setUmask(previous);
  }
  await chmod(path, options.socketMode);
  return {
    address: `unix:${path}`,
    async close() {
      await closeServer(server);
      await rm(path, { force: true });
    },
  };
}

async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await stat(path)).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new Error(`Cannot listen on "${path}": it exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = createConnection({ path });
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
  if (live) throw new Error(`Cannot listen on "${path}": another daemon is serving it`);
  await rm(path, { force: true });
}

function setUmask(mask: number): number | undefined {
  try {
    return process.umask(mask);
  } catch {
    return undefined; // a runtime without umask: chmod right after listen still applies
  }
}

function listenOn(server: Server, start: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once("error", onError);
    server.once("listening", () => {
      server.off("error", onError);
      resolve();
    });
    start();
  });
}

function closeServer(server: Server): Promise<void> {
  // server.close()'s callback waits for every client to leave; stopping to accept is what is asked.
  server.close();
  return Promise.resolve();
}
