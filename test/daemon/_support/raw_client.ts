/**
 * A protocol-level client of virtkitd for tests: the rpc layer's own `RpcClient` over the daemon's Unix
 * socket, plus raw byte access for malformed input.
 */
import { createConnection, type Socket } from "node:net";
import { channelFromSocket, RpcClient } from "../../../drivers/remote/rpc/mod.ts";
import { libvirtErrorOf } from "../../../drivers/remote/rpc/errors.ts";

/** Connects an `RpcClient` to a Unix socket. */
export async function rpcClient(path: string): Promise<{ client: RpcClient; socket: Socket }> {
  const socket = createConnection(path);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return { client: new RpcClient(channelFromSocket(socket), { peerName: "virtkitd" }), socket };
}

/** The libvirt error code a call failed with (undefined when it succeeded). */
export async function errorCodeOf(call: Promise<unknown>): Promise<number | undefined> {
  try {
    await call;
    return undefined;
  } catch (error) {
    const details = libvirtErrorOf(error);
    if (!details) throw error;
    return details.code;
  }
}

/** Opens a raw socket, writes `bytes`, and collects what comes back until the daemon closes or `idleMs` passes. */
export async function rawExchange(path: string, bytes: Uint8Array, idleMs = 300): Promise<{ reply: Uint8Array; closedByDaemon: boolean }> {
  const socket = createConnection(path);
  const chunks: Uint8Array[] = [];
  let closedByDaemon = false;
  await new Promise<void>((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const idle = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        socket.destroy();
        resolve();
      }, idleMs);
    };
    socket.on("connect", () => {
      socket.write(bytes);
      idle();
    });
    socket.on("data", (d: Uint8Array) => {
      chunks.push(d);
      idle();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      closedByDaemon = true;
      clearTimeout(timer);
      resolve();
    });
  });
  const reply = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    reply.set(c, at);
    at += c.byteLength;
  }
  return { reply, closedByDaemon: closedByDaemon && !socket.destroyed ? true : closedByDaemon };
}
