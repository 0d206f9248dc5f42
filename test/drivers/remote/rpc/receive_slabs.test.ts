/**
 * The slab receive path: the socket reads into slabs (ReceiveBuffer), data frames are streamed from
 * them piece by piece (FrameDecoder.feed), and a stream keeps what a slow reader has not read yet as
 * views retained in their slab. The bug this guards against is a slab read into again while a view
 * into it is still retained: the simulated socket here, like a real one, may write anywhere in the
 * memory it is handed, so it scribbles over all of it before each read, and the bytes a reader gets
 * are compared with what was sent.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { ByteChannel, ChunkLease } from "../../../../drivers/remote/rpc/channel.ts";
import { RpcClient } from "../../../../drivers/remote/rpc/client.ts";
import { encodePacket, FrameDecoder, MessageStatus, MessageType, type Packet, type PacketHeader, STREAM_CHUNK_BYTES } from "../../../../drivers/remote/rpc/packet.ts";
import { STORAGE_VOL_DOWNLOAD } from "../../../../drivers/remote/rpc/protocol/storage.ts";
import { ReceiveBuffer } from "../../../../drivers/remote/rpc/receive_buffer.ts";
import type { RpcStream } from "../../../../drivers/remote/rpc/stream.ts";
import { type FakeServer, startFakeServer } from "../_fake_server.ts";
import { concat, dataFrame, DOWNLOAD, endOfData, pattern, readAll, vol } from "./_download_frames.ts";

const streamOk = () => encodePacket({ ...DOWNLOAD, type: MessageType.STREAM, status: MessageStatus.OK });
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** A socket reading into `reads` as node:net does with `onread`: buffer() per read, then callback(). */
function slabSocket(reads: ReceiveBuffer) {
  const handedOut: Uint8Array[] = [];
  const deliver = (bytes: Uint8Array, readBytes: number) => {
    for (let at = 0; at < bytes.length;) {
      const into = reads.onread.buffer();
      handedOut.push(into);
      // The kernel may write anywhere in what it was given: memory still referred to must never be in it.
      into.fill(0xee);
      const n = Math.min(readBytes, into.length, bytes.length - at);
      into.set(bytes.subarray(at, at + n));
      reads.onread.callback(n, into);
      at += n;
    }
  };
  return { deliver, handedOut };
}

/** An RpcClient on a simulated socket reading into slabs, with a download stream open. */
async function openDownload(slabBytes: number, keptSlabs?: number) {
  const reads = new ReceiveBuffer(slabBytes, keptSlabs);
  const socket = slabSocket(reads);
  const decoder = new FrameDecoder();
  const fromClient: Packet[] = [];
  const state = { paused: 0, resumed: 0 };
  const channel: ByteChannel = {
    write(bytes) {
      fromClient.push(...decoder.push(bytes.slice()));
      return undefined;
    },
    onData: (handler) => reads.deliverTo(handler),
    onClose() {},
    pause: () => void state.paused++,
    resume: () => void state.resumed++,
    close() {},
  };
  const client = new RpcClient(channel);
  const opening = client.openStream(STORAGE_VOL_DOWNLOAD, { vol, offset: 0, length: 0, flags: 0 });
  socket.deliver(encodePacket({ ...DOWNLOAD, type: MessageType.REPLY, status: MessageStatus.OK }), slabBytes);
  return { reads, client, fromClient, state, deliver: socket.deliver, handedOut: socket.handedOut, stream: await opening };
}

describe("ReceiveBuffer", () => {
  it("reads into one slab from its start while nothing is retained", () => {
    const reads = new ReceiveBuffer(4096);
    const seen: number[] = [];
    reads.deliverTo((chunk) => void seen.push(chunk[0]!));
    const { deliver, handedOut } = slabSocket(reads);
    for (let i = 0; i < 10; i++) deliver(Uint8Array.of(i, i), 2);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(new Set(handedOut.map((b) => b.buffer)).size).toBe(1);
    expect(handedOut.every((b) => b.byteOffset === 0 && b.length === 4096)).toBe(true);
    expect(reads.slabsMade).toBe(1);
  });

  it("never hands a retained view's memory to the socket, and reuses a slab only once all its views were released", () => {
    const reads = new ReceiveBuffer(100, 1);
    const kept: { view: Uint8Array; copy: Uint8Array; lease: ChunkLease }[] = [];
    reads.deliverTo((chunk, lease) => {
      lease!.retain();
      kept.push({ view: chunk, copy: chunk.slice(), lease: lease! });
    });
    const { deliver, handedOut } = slabSocket(reads);
    // 30-byte reads: three fit a 100-byte slab, the fourth goes to a new one.
    for (let i = 0; i < 8; i++) deliver(pattern(30, i), 30);
    expect(kept.every(({ view, copy }) => same(view, copy))).toBe(true);
    const overlaps = (a: Uint8Array, b: Uint8Array) => a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.length && b.byteOffset < a.byteOffset + a.length;
    handedOut.forEach((into, i) => expect(kept.slice(0, i).some(({ view }) => overlaps(view, into))).toBe(false));
    expect(reads.slabsMade).toBe(3);
    expect(reads.retainedViews).toBe(8);
    // The first slab's three views: released one by one, it is free only after the last.
    kept[0]!.lease.release();
    kept[1]!.lease.release();
    expect(reads.freeSlabs).toBe(0);
    kept[2]!.lease.release();
    expect(reads.freeSlabs).toBe(1);
    // The second slab comes free too, but only one is kept.
    for (const k of kept.slice(3, 6)) k.lease.release();
    expect(reads.freeSlabs).toBe(1);
    expect(reads.retainedViews).toBe(2);
    expect(() => {
      for (let i = 0; i < 3; i++) kept[0]!.lease.release();
    }).toThrow(/released more often/);
  });

  it("moves on to another slab when the rest of a slab is too small for a read", () => {
    const reads = new ReceiveBuffer(256 * 1024);
    reads.deliverTo((_chunk, lease) => lease!.retain());
    const { deliver, handedOut } = slabSocket(reads);
    deliver(new Uint8Array(200 * 1024), 200 * 1024);
    deliver(new Uint8Array(10), 10);
    // 56 KiB were left: below the 64 KiB minimum, so the second read went to a new slab.
    expect(handedOut[1]!.buffer).not.toBe(handedOut[0]!.buffer);
    expect(handedOut[1]!.length).toBe(256 * 1024);
  });
});

describe("FrameDecoder.feed", () => {
  it("streams a data frame split at every point as pieces of its payload, with nothing assembled", () => {
    const payload = pattern(100, 1);
    const wire = concat([dataFrame(payload), endOfData()]);
    for (let split = 1; split < wire.length; split++) {
      const decoder = new FrameDecoder();
      const pieces: Uint8Array[] = [];
      const packets: Packet[] = [];
      const sink = { packet: (p: Packet) => void packets.push(p), data: (_h: PacketHeader, piece: Uint8Array) => void pieces.push(piece.slice()) };
      const first = wire.slice(0, split);
      decoder.feed(first, sink);
      first.fill(0xee);
      decoder.feed(wire.slice(split), sink);
      expect(same(concat(pieces), payload)).toBe(true);
      expect(packets.map((p) => [p.header.type, p.header.status, p.payload.length])).toEqual([[MessageType.STREAM, MessageStatus.CONTINUE, 0]]);
      expect(decoder.pendingBytes).toBe(0);
    }
  });

  it("keeps wire order between data pieces and whole messages", () => {
    const decoder = new FrameDecoder();
    const order: string[] = [];
    const reply = encodePacket({ ...DOWNLOAD, serial: 5, type: MessageType.REPLY, status: MessageStatus.OK });
    const wire = concat([reply, dataFrame(pattern(10, 2)), endOfData(), dataFrame(pattern(3, 3)), streamOk()]);
    decoder.feed(wire, {
      packet: (p) => void order.push(`packet ${p.header.type}/${p.header.status}`),
      data: (_h, piece) => void order.push(`data ${piece.length}`),
    });
    expect(order).toEqual(["packet 1/0", "data 10", "packet 3/2", "data 3", "packet 3/0"]);
  });

  it("counts a data frame being streamed as pending, and rejects an oversized one before any of it", () => {
    const decoder = new FrameDecoder(1000);
    const sink = { packet() {}, data() {} };
    decoder.feed(dataFrame(pattern(500, 4)).subarray(0, 200), sink);
    expect(decoder.pendingBytes).toBe(200);
    expect(() => decoder.finish()).toThrow(/inside a message: 200 of 528 bytes/);
    expect(() => new FrameDecoder(1000).feed(dataFrame(pattern(2000, 5)).subarray(0, 4), sink)).toThrow(/exceeds the limit/);
  });
});

describe("RpcStream data held in slabs for a slow reader", () => {
  it("keeps data intact while later reads need more slabs than are kept, and gives every slab back once read", async () => {
    const { stream, deliver, reads, client } = await openDownload(64 * 1024, 2);
    // Frames of 5,000 to 9,000 bytes in 3,000-byte reads: most frames span reads, many span slabs.
    const chunks = Array.from({ length: 80 }, (_, i) => pattern(5000 + ((i * 997) % 4000), i));
    deliver(concat([...chunks.map(dataFrame), endOfData(), streamOk()]), 3000);
    expect(stream.bufferedBytes).toBe(concat(chunks).length);
    expect(reads.slabsMade).toBeGreaterThan(3);
    expect(same(await readAll(stream, 7000), concat(chunks))).toBe(true);
    await stream.finished;
    expect(reads.retainedViews).toBe(0);
    expect(reads.freeSlabs).toBeLessThanOrEqual(2);
    expect(client.openStreams).toBe(0);
  });

  it("reuses released slabs for new data while older data is still held", async () => {
    const { stream, deliver, reads } = await openDownload(32 * 1024, 4);
    const first = Array.from({ length: 20 }, (_, i) => pattern(4000 + i, 10 + i));
    deliver(concat(first.map(dataFrame)), 2500);
    const early = new Uint8Array(30_000);
    let got = 0;
    while (got < early.length) got += await stream.read(early.subarray(got));
    expect(reads.freeSlabs).toBeGreaterThan(0);
    const made = reads.slabsMade;
    const second = Array.from({ length: 20 }, (_, i) => pattern(4500 - i, 50 + i));
    deliver(concat([...second.map(dataFrame), endOfData(), streamOk()]), 1700);
    // Some of the new data went into slabs released by the reads above, not only new ones.
    expect(reads.slabsMade).toBeLessThan(made + Math.ceil(concat(second).length / (32 * 1024)));
    const rest = await readAll(stream, 9000);
    expect(same(concat([early, rest]), concat([...first, ...second]))).toBe(true);
    expect(reads.retainedViews).toBe(0);
  });

  it("fills a waiting read across many frames up to its minimum, copying nothing it does not hold", async () => {
    const { stream, deliver, reads } = await openDownload(64 * 1024);
    const target = new Uint8Array(3 * STREAM_CHUNK_BYTES);
    const waiting = stream.read(target, target.length);
    const data = pattern(3 * STREAM_CHUNK_BYTES + 1000, 7);
    let resolved = false;
    void waiting.then(() => (resolved = true));
    deliver(concat([dataFrame(data.subarray(0, STREAM_CHUNK_BYTES)), dataFrame(data.subarray(STREAM_CHUNK_BYTES, 2 * STREAM_CHUNK_BYTES))]), 50_000);
    await Promise.resolve();
    expect(resolved).toBe(false);
    expect(stream.bufferedBytes).toBe(0);
    expect(reads.slabsMade).toBe(1);
    deliver(concat([dataFrame(data.subarray(2 * STREAM_CHUNK_BYTES, 3 * STREAM_CHUNK_BYTES)), dataFrame(data.subarray(3 * STREAM_CHUNK_BYTES))]), 50_000);
    expect(await waiting).toBe(target.length);
    expect(stream.bufferedBytes).toBe(1000);
    expect(reads.retainedViews).toBe(1);
    deliver(concat([endOfData(), streamOk()]), 50_000);
    const tail = new Uint8Array(5000);
    // At the end a read gets what there is, below its minimum.
    expect(await stream.read(tail, tail.length)).toBe(1000);
    expect(await stream.read(tail, tail.length)).toBe(0);
    expect(same(concat([target, tail.subarray(0, 1000)]), data)).toBe(true);
    expect(reads.retainedViews).toBe(0);
  });

  it("drops held data and releases its slabs when the stream fails", async () => {
    const { stream, deliver, reads, client } = await openDownload(64 * 1024);
    deliver(concat(Array.from({ length: 10 }, (_, i) => dataFrame(pattern(6000, i)))), 5000);
    expect(reads.retainedViews).toBeGreaterThan(0);
    client.close();
    await expect(stream.finished).rejects.toMatchObject({ name: "ConnectError" });
    expect(reads.retainedViews).toBe(0);
    expect(client.openStreams).toBe(0);
  });
});

describe("a reader that goes away mid-download, over a real socket", () => {
  let server: FakeServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("cancelling the readable aborts the stream: the peer gets the abort, held slabs are released, the connection goes on", async () => {
    const frame = pattern(STREAM_CHUNK_BYTES, 3);
    let aborted = 0;
    server = await startFakeServer((p, reply) => {
      if (p.header.type === MessageType.CALL && p.header.procedure === STORAGE_VOL_DOWNLOAD.number) {
        reply.ok(p);
        // More than the stream holds before it pauses the socket: the reader goes away with data held.
        for (let i = 0; i < 48; i++) reply.send({ ...p.header, type: MessageType.STREAM, status: MessageStatus.CONTINUE }, frame);
      } else if (p.header.type === MessageType.STREAM && p.header.status === MessageStatus.ERROR) {
        aborted++;
        reply.send({ ...p.header, status: MessageStatus.OK });
      } else if (p.header.type === MessageType.CALL) reply.ok(p, new Uint8Array(4));
    });
    const client = await server.client({}, 1024 * 1024);
    const reads = server.reads!;
    const stream = await client.openStream(STORAGE_VOL_DOWNLOAD, { vol, offset: 0, length: 0, flags: 0 });
    const reader = stream.readable.getReader({ mode: "byob" });
    const first = await reader.read(new Uint8Array(100_000));
    expect(same(first.value!, frame.subarray(0, 100_000))).toBe(true);
    // Wait (on the stream's own state, no sleeping) until data is held in slabs.
    while (stream.bufferedBytes === 0) await new Promise((resolve) => setImmediate(resolve));
    expect(reads.retainedViews).toBeGreaterThan(0);
    await reader.cancel(new Error("the consumer went away"));
    await stream.finished;
    expect(aborted).toBe(1);
    expect(client.openStreams).toBe(0);
    expect(reads.retainedViews).toBe(0);
    // Frames the server had already sent after the abort are dropped; the connection still answers.
    const { CONNECT_SUPPORTS_FEATURE } = await import("../../../../drivers/remote/rpc/protocol/connect.ts");
    expect(await client.call(CONNECT_SUPPORTS_FEATURE, 10)).toBe(0);
    expect(client.closed).toBe(false);
  });
});
