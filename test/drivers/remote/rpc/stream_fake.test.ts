/**
 * Streams against a fake peer, in the frame order libvirtd 9.0 uses (reference/libvirt-rpc.md §10):
 * download data, its end and the OK handshake; upload frames, finish and the server's confirmation; an
 * ERROR frame from the server mid-download; a connection lost mid-stream.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ConnectError, NotFoundError } from "../../../../core/errors.ts";
import { encode } from "../../../../drivers/remote/rpc/codec.ts";
import { MessageStatus, MessageType, STREAM_CHUNK_BYTES } from "../../../../drivers/remote/rpc/packet.ts";
import { remoteError } from "../../../../drivers/remote/rpc/protocol/common.ts";
import { STORAGE_VOL_DOWNLOAD, STORAGE_VOL_UPLOAD } from "../../../../drivers/remote/rpc/protocol/storage.ts";
import { type FakeServer, startFakeServer } from "../_fake_server.ts";

const vol = { pool: "p", name: "v", key: "/p/v" };
let server: FakeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
}

describe("RPC streams against a fake peer", () => {
  it("downloads data frames, then ends with the empty CONTINUE / OK / OK handshake", async () => {
    const data = Uint8Array.from({ length: 3 * STREAM_CHUNK_BYTES + 17 }, (_, i) => (i * 7) & 255);
    server = await startFakeServer((p, reply) => {
      if (p.header.type === MessageType.CALL) {
        reply.ok(p);
        const stream = { ...p.header, type: MessageType.STREAM, status: MessageStatus.CONTINUE };
        for (let at = 0; at < data.length; at += STREAM_CHUNK_BYTES) reply.send(stream, data.subarray(at, at + STREAM_CHUNK_BYTES));
        reply.send(stream);
      } else if (p.header.type === MessageType.STREAM && p.header.status === MessageStatus.OK) {
        reply.send({ ...p.header, status: MessageStatus.OK });
      }
    });
    const client = await server.client();
    const stream = await client.openStream(STORAGE_VOL_DOWNLOAD, { vol, offset: 0, length: 0, flags: 0 });
    const got = await readAll(stream.readable);
    await stream.finished;
    expect(Buffer.from(got).equals(Buffer.from(data))).toBe(true);
    const fromClient = server.received.filter((p) => p.header.type === MessageType.STREAM);
    expect(fromClient.map((p) => [p.header.status, p.payload.length, p.header.procedure, p.header.serial])).toEqual([[MessageStatus.OK, 0, 209, 0]]);
  });

  it("uploads in frames of at most 262,120 bytes and waits for the server's confirmation", async () => {
    const received: Uint8Array[] = [];
    server = await startFakeServer((p, reply) => {
      if (p.header.type === MessageType.CALL) return reply.ok(p);
      if (p.header.status === MessageStatus.CONTINUE) return void received.push(p.payload.slice());
      if (p.header.status === MessageStatus.OK) reply.send({ ...p.header, status: MessageStatus.OK });
    });
    const client = await server.client();
    const stream = await client.openStream(STORAGE_VOL_UPLOAD, { vol, offset: 0, length: 0, flags: 0 });
    const data = Uint8Array.from({ length: 600_000 }, (_, i) => i & 255);
    await stream.write(data);
    await stream.finish();
    expect(received.map((r) => r.length)).toEqual([STREAM_CHUNK_BYTES, STREAM_CHUNK_BYTES, 600_000 - 2 * STREAM_CHUNK_BYTES]);
    expect(Buffer.concat(received).equals(Buffer.from(data))).toBe(true);
  });

  it("errors the readable with the mapped error of a server ERROR frame", async () => {
    server = await startFakeServer((p, reply) => {
      if (p.header.type !== MessageType.CALL) return;
      reply.ok(p);
      reply.send({ ...p.header, type: MessageType.STREAM, status: MessageStatus.CONTINUE }, new Uint8Array(100));
      reply.send({ ...p.header, type: MessageType.STREAM, status: MessageStatus.ERROR }, encode(remoteError, {
        code: 50, domain: 18, message: "Storage volume not found", level: 2, dom: undefined, str1: undefined, str2: undefined, str3: undefined, int1: 0, int2: 0, net: undefined,
      }));
    });
    const client = await server.client();
    const stream = await client.openStream(STORAGE_VOL_DOWNLOAD, { vol, offset: 0, length: 0, flags: 0 }, { objectName: "v" });
    await expect(readAll(stream.readable)).rejects.toBeInstanceOf(NotFoundError);
    await expect(stream.finished).rejects.toBeInstanceOf(NotFoundError);
    expect(client.closed).toBe(false);
  });

  it("fails an open stream with ConnectError when the connection is lost", async () => {
    server = await startFakeServer((p, reply) => {
      if (p.header.type !== MessageType.CALL) return;
      reply.ok(p);
      reply.send({ ...p.header, type: MessageType.STREAM, status: MessageStatus.CONTINUE }, new Uint8Array(10));
      setImmediate(() => reply.hangUp());
    });
    const client = await server.client();
    const stream = await client.openStream(STORAGE_VOL_DOWNLOAD, { vol, offset: 0, length: 0, flags: 0 });
    await expect(readAll(stream.readable)).rejects.toBeInstanceOf(ConnectError);
    await expect(stream.write(new Uint8Array(4))).rejects.toBeInstanceOf(ConnectError);
  });
});
