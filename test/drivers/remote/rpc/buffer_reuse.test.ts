/**
 * Buffer reuse on the receive path: the socket reads into one buffer again and again, frames that span
 * reads are assembled in pooled buffers, and stream data is held until a (slow) reader takes it. The
 * classic bug of buffer reuse is data kept as a view into memory that the next read overwrites: every
 * case here overwrites the receive buffer after each delivery and checks the bytes a reader gets.
 */
import { afterEach, describe, expect, it } from "vitest";
import { BufferPool } from "../../../../drivers/remote/rpc/buffer_pool.ts";
import type { ByteChannel } from "../../../../drivers/remote/rpc/channel.ts";
import { RpcClient } from "../../../../drivers/remote/rpc/client.ts";
import { decode, encode, opaque } from "../../../../drivers/remote/rpc/codec.ts";
import { encodePacket, FrameDecoder, MessageStatus, MessageType, type Packet, STREAM_CHUNK_BYTES } from "../../../../drivers/remote/rpc/packet.ts";
import { STORAGE_VOL_DOWNLOAD } from "../../../../drivers/remote/rpc/protocol/storage.ts";
import type { RpcStream } from "../../../../drivers/remote/rpc/stream.ts";
import { type FakeServer, startFakeServer } from "../_fake_server.ts";
import { concat, dataFrame, DOWNLOAD, endOfData, pattern, readAll, vol } from "./_download_frames.ts";


/**
 * An in-memory channel that delivers through one reused buffer, as a socket with `onread` does, and
 * scribbles over that buffer after every delivery (what the next read would do).
 */
function reusingChannel(bufferBytes: number) {
  const buffer = new Uint8Array(bufferBytes);
  let handler: (chunk: Uint8Array) => void = () => {};
  const fromClient: Packet[] = [];
  const decoder = new FrameDecoder();
  const state = { paused: 0, resumed: 0 };
  const channel: ByteChannel = {
    write(bytes) {
      fromClient.push(...decoder.push(bytes.slice()));
      return undefined;
    },
    onData: (h) => void (handler = h),
    onClose() {},
    pause: () => void state.paused++,
    resume: () => void state.resumed++,
    close() {},
  };
  const deliver = (bytes: Uint8Array, readBytes = bufferBytes) => {
    for (let at = 0; at < bytes.length; at += readBytes) {
      const n = Math.min(readBytes, bytes.length - at);
      buffer.set(bytes.subarray(at, at + n));
      handler(buffer.subarray(0, n));
      buffer.fill(0xee);
    }
  };
  return { channel, deliver, fromClient, state };
}

async function openDownload(bufferBytes: number) {
  const wire = reusingChannel(bufferBytes);
  const client = new RpcClient(wire.channel);
  const opening = client.openStream(STORAGE_VOL_DOWNLOAD, { vol, offset: 0, length: 0, flags: 0 });
  wire.deliver(encodePacket({ ...DOWNLOAD, type: MessageType.REPLY, status: MessageStatus.OK }));
  return { ...wire, client, stream: await opening };
}

describe("FrameDecoder with a reused input buffer", () => {
  it("assembles a frame split at every possible point, though the first part's memory is overwritten", () => {
    const frame = dataFrame(pattern(100, 1));
    for (let split = 1; split < frame.length; split++) {
      const decoder = new FrameDecoder();
      const reused = frame.slice(0, split);
      expect(decoder.push(reused)).toEqual([]);
      reused.fill(0xee);
      const [packet] = decoder.push(frame.slice(split));
      expect(packet!.owned).toBe(true);
      expect(Buffer.from(packet!.payload).equals(Buffer.from(pattern(100, 1)))).toBe(true);
      expect(decoder.pendingBytes).toBe(0);
    }
  });

  it("reads two frames delivered one byte at a time through a single reused byte", () => {
    const decoder = new FrameDecoder();
    const wire = concat([dataFrame(pattern(9, 2)), dataFrame(pattern(13, 3))]);
    const one = new Uint8Array(1);
    const packets: Packet[] = [];
    for (const byte of wire) {
      one[0] = byte;
      packets.push(...decoder.push(one));
    }
    expect(packets.map((p) => Array.from(p.payload))).toEqual([Array.from(pattern(9, 2)), Array.from(pattern(13, 3))]);
  });

  it("gives frames up to the pool's size pooled buffers, and frames beyond it buffers of their own", () => {
    const pool = new BufferPool(256, 4);
    const decoder = new FrameDecoder(undefined, pool);
    const small = dataFrame(pattern(200, 4));
    const large = dataFrame(pattern(5000, 5));
    const [a] = [...decoder.push(small.subarray(0, 50)), ...decoder.push(small.subarray(50))];
    expect(a!.owned).toBe(true);
    decoder.release(a!);
    expect(pool.freeBuffers).toBe(1);
    const parts = [large.subarray(0, 3), large.subarray(3, 2000), large.subarray(2000, 4100), large.subarray(4100)];
    const [b] = parts.flatMap((part) => decoder.push(part));
    expect(Buffer.from(b!.payload).equals(Buffer.from(pattern(5000, 5)))).toBe(true);
    decoder.release(b!);
    // The large frame's buffer is not pooled; the pooled one is still the only free buffer.
    expect(pool.freeBuffers).toBe(1);
    // A second release of the same packet must not put its buffer in the free list twice.
    decoder.release(a!);
    expect(pool.freeBuffers).toBe(1);
  });
  it("grows the buffer of a message over 1 MiB as its bytes arrive, and assembles it whole", () => {
    const decoder = new FrameDecoder();
    const payload = pattern(3 * 1024 * 1024 + 5, 6);
    const frame = encodePacket({ ...DOWNLOAD, type: MessageType.REPLY, status: MessageStatus.OK }, payload);
    const reused = new Uint8Array(500_000);
    const packets: Packet[] = [];
    for (let at = 0; at < frame.length; at += reused.length) {
      const n = Math.min(reused.length, frame.length - at);
      reused.set(frame.subarray(at, at + n));
      packets.push(...decoder.push(reused.subarray(0, n)));
      reused.fill(0xee);
      if (at + n < frame.length) expect(decoder.pendingBytes).toBe(at + n);
    }
    expect(packets).toHaveLength(1);
    expect(Buffer.from(packets[0]!.payload).equals(Buffer.from(payload))).toBe(true);
  });
});

describe("BufferPool", () => {
  it("reuses released buffers, keeps at most maxFree, and never pools a request over its size", () => {
    const pool = new BufferPool(1024, 1);
    const a = pool.acquire(1000);
    const b = pool.acquire(10);
    expect(a.buffer).not.toBe(b.buffer);
    pool.release(a);
    pool.release(b);
    expect(pool.freeBuffers).toBe(1);
    expect(pool.acquire(5).buffer).toBe(a.buffer);
    const big = pool.acquire(2048);
    expect(big.length).toBe(2048);
    pool.release(big);
    expect(pool.freeBuffers).toBe(0);
    expect(() => new BufferPool(0, 1)).toThrow(RangeError);
  });
});

describe("decoded values outlive the receive buffer", () => {
  it("copies opaque values out of the input", () => {
    const codec = opaque(64);
    const bytes = encode(codec, Uint8Array.of(1, 2, 3, 4, 5));
    const value = decode(codec, bytes);
    bytes.fill(0);
    expect(Array.from(value)).toEqual([1, 2, 3, 4, 5]);
  });
});

describe("RpcStream data held for a slow reader through a reused receive buffer", () => {
  it("keeps whole frames that arrived inside one read intact until they are read", async () => {
    const { stream, deliver, fromClient } = await openDownload(1024 * 1024);
    const chunks = Array.from({ length: 40 }, (_, i) => pattern(1000 + i, i));
    deliver(concat([...chunks.map(dataFrame), endOfData()]));
    // The client agreed to the end of data at once; the reader has not read a byte yet.
    expect(fromClient.filter((p) => p.header.type === MessageType.STREAM).map((p) => p.header.status)).toEqual([MessageStatus.OK]);
    expect(stream.bufferedBytes).toBe(concat(chunks).length);
    deliver(encodePacket({ ...DOWNLOAD, type: MessageType.STREAM, status: MessageStatus.OK }));
    expect(Buffer.from(await readAll(stream)).equals(Buffer.from(concat(chunks)))).toBe(true);
    await stream.finished;
  });

  it("keeps frames assembled from many reads in their pooled buffers while later frames reuse released ones", async () => {
    const { stream, deliver } = await openDownload(4096);
    const first = Array.from({ length: 12 }, (_, i) => pattern(STREAM_CHUNK_BYTES - i, 10 + i));
    deliver(concat(first.map(dataFrame)), 4096);
    // Read part of it: some pooled buffers go back to the pool, to be reused by the frames below.
    const early = new Uint8Array(3 * STREAM_CHUNK_BYTES + 5);
    let got = 0;
    while (got < early.length) got += await stream.read(early.subarray(got));
    const second = Array.from({ length: 12 }, (_, i) => pattern(STREAM_CHUNK_BYTES - 3 * i, 50 + i));
    deliver(concat([...second.map(dataFrame), endOfData(), encodePacket({ ...DOWNLOAD, type: MessageType.STREAM, status: MessageStatus.OK })]), 3000);
    const rest = await readAll(stream, 100_000);
    const expected = concat([...first, ...second]);
    expect(Buffer.from(concat([early, rest])).equals(Buffer.from(expected))).toBe(true);
  });

  it("copies a frame straight into a read that was already waiting, and holds the remainder", async () => {
    const { stream, deliver } = await openDownload(8192);
    const target = new Uint8Array(3000);
    const waiting = stream.read(target);
    const data = pattern(5000, 7);
    deliver(dataFrame(data));
    expect(await waiting).toBe(3000);
    expect(stream.bufferedBytes).toBe(2000);
    const rest = new Uint8Array(2000);
    expect(await stream.read(rest)).toBe(2000);
    expect(Buffer.from(concat([target, rest])).equals(Buffer.from(data))).toBe(true);
  });

  it("pauses the channel once 8 MiB are held and resumes it when the reader is below half of that", async () => {
    const { stream, deliver, state } = await openDownload(1024 * 1024);
    const frame = dataFrame(pattern(STREAM_CHUNK_BYTES, 9));
    for (let i = 0; i < 33 && state.paused === 0; i++) deliver(frame);
    expect(state.paused).toBe(1);
    expect(stream.bufferedBytes).toBeGreaterThanOrEqual(8 * 1024 * 1024);
    const sink = new Uint8Array(STREAM_CHUNK_BYTES);
    while (stream.bufferedBytes >= 4 * 1024 * 1024) {
      expect(state.resumed).toBe(0);
      await stream.read(sink);
    }
    expect(state.resumed).toBe(1);
    expect(Array.from(sink.subarray(0, 4))).toEqual(Array.from(pattern(4, 9)));
  });
});

describe("a real socket reading into one reused buffer (onread)", () => {
  let server: FakeServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("downloads frames larger than the receive buffer for a reader that starts after all of them arrived", async () => {
    const data = pattern(3 * STREAM_CHUNK_BYTES + 17, 11);
    server = await startFakeServer((p, reply) => {
      if (p.header.type === MessageType.CALL) {
        reply.ok(p);
        const frame = { ...p.header, type: MessageType.STREAM, status: MessageStatus.CONTINUE };
        for (let at = 0; at < data.length; at += STREAM_CHUNK_BYTES) reply.send(frame, data.subarray(at, at + STREAM_CHUNK_BYTES));
        reply.send(frame);
      } else if (p.header.type === MessageType.STREAM && p.header.status === MessageStatus.OK) {
        reply.send({ ...p.header, status: MessageStatus.OK });
      }
    });
    const client = await server.client({}, 1000);
    const stream = await client.openStream(STORAGE_VOL_DOWNLOAD, { vol, offset: 0, length: 0, flags: 0 });
    const deadline = Date.now() + 10_000;
    while (stream.bufferedBytes < data.length) {
      if (Date.now() > deadline) throw new Error(`only ${stream.bufferedBytes} of ${data.length} bytes arrived`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await stream.finished;
    expect(Buffer.from(await readAll(stream)).equals(Buffer.from(data))).toBe(true);
  });
});
