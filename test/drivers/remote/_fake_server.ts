/**
 * A scripted libvirt RPC peer on a Unix socket in a temporary directory, for the error paths a real
 * libvirtd never takes: each complete frame from the client goes to `onPacket`, which answers with
 * whatever bytes it likes (well-formed or not) through `send`/`sendRaw`.
 */
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { channelFromSocket, ReceiveBuffer } from "../../../drivers/remote/rpc/channel.ts";
import { RpcClient, type RpcClientOptions } from "../../../drivers/remote/rpc/client.ts";
import { encode } from "../../../drivers/remote/rpc/codec.ts";
import { encodePacket, FrameDecoder, MessageStatus, MessageType, type Packet, type PacketHeader } from "../../../drivers/remote/rpc/packet.ts";
import { remoteError } from "../../../drivers/remote/rpc/protocol/common.ts";

/** What a handler gets to answer with. */
export interface FakeReply {
  /** Sends a well-formed frame. */
  send(header: PacketHeader, payload?: Uint8Array): void;
  /** Sends raw bytes. */
  sendRaw(bytes: Uint8Array): void;
  /** Answers the call `packet` with `payload` (status OK). */
  ok(packet: Packet, payload?: Uint8Array): void;
  /** Answers the call with a `remote_error`. */
  error(packet: Packet, code: number, message: string, domain?: number): void;
  /** Closes the client's socket. */
  hangUp(): void;
}

/** A running fake peer. */
export interface FakeServer {
  /** Its socket path. */
  readonly socketPath: string;
  /** Every frame the client sent, in order. */
  readonly received: Packet[];
  /**
   * Opens a client to it; with `receiveBufferBytes`, its socket reads into reused slabs of that size
   * (`onread`), as the remote driver's transport does.
   */
  client(options?: RpcClientOptions, receiveBufferBytes?: number): Promise<RpcClient>;
  /** The receive buffer of the last client opened with one. */
  readonly reads: ReceiveBuffer | undefined;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}

/**
 * Starts a fake peer.
 *
 * @param onPacket Handles each frame from the client.
 */
export async function startFakeServer(onPacket: (packet: Packet, reply: FakeReply) => void): Promise<FakeServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vk-rpc-fake-"));
  const socketPath = path.join(dir, "sock");
  const received: Packet[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    const decoder = new FrameDecoder();
    const reply: FakeReply = {
      send: (header, payload) => void (socket.destroyed || socket.write(encodePacket(header, payload))),
      sendRaw: (bytes) => void (socket.destroyed || socket.write(bytes)),
      ok: (p, payload) => reply.send({ ...p.header, type: MessageType.REPLY, status: MessageStatus.OK }, payload),
      error: (p, code, message, domain = 10) => {
        const record = { code, domain, message, level: 2, dom: undefined, str1: message, str2: undefined, str3: undefined, int1: -1, int2: -1, net: undefined };
        reply.send({ ...p.header, type: MessageType.REPLY, status: MessageStatus.ERROR }, encode(remoteError, record));
      },
      hangUp: () => void socket.destroy(),
    };
    socket.on("data", (chunk: Uint8Array) => {
      for (const packet of decoder.push(chunk.slice())) {
        received.push(packet);
        onPacket(packet, reply);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  const clients: RpcClient[] = [];
  let lastReads: ReceiveBuffer | undefined;
  return {
    socketPath,
    received,
    get reads() {
      return lastReads;
    },
    async client(options, receiveBufferBytes) {
      const reads = receiveBufferBytes === undefined ? undefined : new ReceiveBuffer(receiveBufferBytes);
      lastReads = reads ?? lastReads;
      const socket = net.createConnection({ path: socketPath, ...(reads ? { onread: reads.onread as net.OnReadOpts } : {}) });
      await new Promise<void>((resolve, reject) => {
        socket.once("connect", () => resolve());
        socket.once("error", reject);
      });
      const client = new RpcClient(channelFromSocket(socket, reads), { peerName: "fake server", ...options });
      clients.push(client);
      return client;
    },
    async close() {
      for (const c of clients) c.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
