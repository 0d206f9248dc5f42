/**
 * Sparse streams against a fake peer: STREAM_HOLE frames (type 6, a `virNetStreamHole` of hyper length
 * and uint flags, status CONTINUE, as libvirtd sends a volume's holes when a download asks for
 * `SPARSE_STREAM`). The reader gets a hole's zeros in place, whatever its buffer size; malformed holes
 * and holes on a stream that did not ask for them break the protocol and end the connection; and the
 * remote driver's download asks libvirtd for a sparse stream and charges only data against its cap.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createRealClock } from "../../../../core/clock.ts";
import { ConnectError } from "../../../../core/errors.ts";
import { createEventBus } from "../../../../core/event_bus.ts";
import { createJobManager } from "../../../../core/jobs/job_manager.ts";
import { decode, encode } from "../../../../drivers/remote/rpc/codec.ts";
import { MessageStatus, MessageType, type PacketHeader } from "../../../../drivers/remote/rpc/packet.ts";
import { streamHole } from "../../../../drivers/remote/rpc/protocol/common.ts";
import { STORAGE_VOL_DOWNLOAD, STORAGE_VOL_GET_INFO, VolumeStreamFlags } from "../../../../drivers/remote/rpc/protocol/storage.ts";
import { startRemoteDownload } from "../../../../drivers/remote/storage/transfers.ts";
import { type FakeServer, startFakeServer } from "../_fake_server.ts";
import { concat, pattern, readAll, vol } from "./_download_frames.ts";

let server: FakeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A `virNetStreamHole` body. */
const holeBody = (length: number, flags = 0) => encode(streamHole, { length, flags });

/** The parts of a sparse download: data (patterned) or a hole (its length). */
type Part = Uint8Array | number;

/** What the reader must get for `parts`: data as sent, holes as zeros. */
const expected = (parts: Part[]) => concat(parts.map((p) => (typeof p === "number" ? new Uint8Array(p) : p)));

/** Answers the opening call, then sends `parts` as data and hole frames, then the end of data; confirms the client's OK. */
function sparsePeer(parts: Part[], onCall?: (header: PacketHeader, payload: Uint8Array) => void) {
  return startFakeServer((p, reply) => {
    if (p.header.type === MessageType.CALL) {
      onCall?.(p.header, p.payload);
      if (p.header.procedure === STORAGE_VOL_GET_INFO.number) {
        const capacity = parts.reduce<number>((n, part) => n + (typeof part === "number" ? part : part.length), 0);
        return reply.ok(p, encode(STORAGE_VOL_GET_INFO.ret, { type: 0, capacity, allocation: capacity }));
      }
      reply.ok(p);
      const head = { ...p.header, type: MessageType.STREAM, status: MessageStatus.CONTINUE };
      for (const part of parts) {
        if (typeof part === "number") reply.send({ ...head, type: MessageType.STREAM_HOLE }, holeBody(part));
        else reply.send(head, part);
      }
      reply.send(head);
    } else if (p.header.type === MessageType.STREAM && p.header.status === MessageStatus.OK) {
      reply.send({ ...p.header, status: MessageStatus.OK });
    }
  });
}

describe("sparse RPC streams against a fake peer", () => {
  const parts: Part[] = [300_000, pattern(1000, 7), 5, pattern(70_000, 9), 1 << 20, pattern(3, 1), 17];

  for (const chunkBytes of [1, 4096, 65_536, 1 << 21]) {
    it(`reads holes as zeros in place, ${chunkBytes}-byte reads, and counts them`, async () => {
      server = await sparsePeer(parts);
      const client = await server.client({}, 64 * 1024);
      const stream = await client.openStream(STORAGE_VOL_DOWNLOAD, { vol, offset: 0, length: 0, flags: 1 }, { holes: true });
      const got = chunkBytes === 1 ? await readAll(stream, 997) : await readAll(stream, chunkBytes);
      await stream.finished;
      expect(Buffer.from(got).equals(Buffer.from(expected(parts)))).toBe(true);
      expect(stream.holeBytesRead).toBe(300_000 + 5 + (1 << 20) + 17);
      expect(stream.bufferedBytes).toBe(0);
    });
  }

  it("gives a web-stream reader the zeros too", async () => {
    server = await sparsePeer(parts);
    const client = await server.client();
    const stream = await client.openStream(STORAGE_VOL_DOWNLOAD, { vol, offset: 0, length: 0, flags: 1 }, { holes: true });
    const got = new Uint8Array(await new Response(stream.readable).arrayBuffer());
    expect(Buffer.from(got).equals(Buffer.from(expected(parts)))).toBe(true);
  });

  const broken: [string, (head: PacketHeader) => [PacketHeader, Uint8Array], RegExp][] = [
    ["a hole of length 0", (h) => [h, holeBody(0)], /hole of 0 bytes/],
    ["a negative hole", (h) => [h, holeBody(-4096)], /hole of -4096 bytes/],
    ["a hole with flags", (h) => [h, holeBody(4096, 1)], /flags 0x1/],
    ["a hole with status OK", (h) => [{ ...h, status: MessageStatus.OK }, holeBody(4096)], /status 0/],
    ["a truncated hole", (h) => [h, holeBody(4096).subarray(0, 8)], /Malformed XDR/],
    ["a hole with bytes left over", (h) => [h, concat([holeBody(4096), new Uint8Array(4)])], /stream hole|left/i],
  ];
  for (const [what, frame, message] of broken) {
    it(`ends the connection with a protocol error on ${what}`, async () => {
      server = await startFakeServer((p, reply) => {
        if (p.header.type !== MessageType.CALL) return;
        reply.ok(p);
        const [header, body] = frame({ ...p.header, type: MessageType.STREAM_HOLE, status: MessageStatus.CONTINUE });
        reply.send(header, body);
      });
      const client = await server.client();
      const stream = await client.openStream(STORAGE_VOL_DOWNLOAD, { vol, offset: 0, length: 0, flags: 1 }, { holes: true });
      const error = await readAll(stream).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as Error).message).toMatch(message);
      expect(client.closed).toBe(true);
    });
  }

  it("a hole on a stream that did not ask for holes is a protocol error, as in libvirt's client", async () => {
    server = await sparsePeer([pattern(10, 1), 4096]);
    const client = await server.client();
    const stream = await client.openStream(STORAGE_VOL_DOWNLOAD, { vol, offset: 0, length: 0, flags: 0 });
    const error = await readAll(stream).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/not opened sparse/);
    expect(client.closed).toBe(true);
  });
});

describe("the remote driver's download over a sparse stream", () => {
  /** The driver's storage context on a fake peer's client. */
  async function download(parts: Part[], bandwidth?: number) {
    const calls: { procedure: number; payload: Uint8Array }[] = [];
    server = await sparsePeer(parts, (header, payload) => void calls.push({ procedure: header.procedure, payload: payload.slice() }));
    const client = await server.client({}, 64 * 1024);
    const clock = createRealClock();
    const bus = createEventBus({ clock });
    const jobs = createJobManager({ bus, clock });
    const job = await startRemoteDownload({ client, jobs, bus }, vol, bandwidth === undefined ? {} : { bandwidth });
    return { job, calls };
  }

  it("asks libvirtd for SPARSE_STREAM and reads every byte, holes as zeros", async () => {
    const parts: Part[] = [pattern(4096, 3), 1 << 20, pattern(100, 4)];
    const { job, calls } = await download(parts);
    const got = new Uint8Array(await new Response(job.readable).arrayBuffer());
    await job.wait();
    expect(Buffer.from(got).equals(Buffer.from(expected(parts)))).toBe(true);
    const opened = calls.find((c) => c.procedure === STORAGE_VOL_DOWNLOAD.number)!;
    expect(decode(STORAGE_VOL_DOWNLOAD.args, opened.payload).flags).toBe(VolumeStreamFlags.SPARSE_STREAM);
    expect((await job.info()).cur).toBe(got.length);
  });

  it("downloads plainly from a peer that refuses the flag (libvirt before 3.4)", async () => {
    const data = pattern(10_000, 8);
    const flags: number[] = [];
    server = await startFakeServer((p, reply) => {
      if (p.header.type === MessageType.STREAM && p.header.status === MessageStatus.OK) return reply.send({ ...p.header, status: MessageStatus.OK });
      if (p.header.type !== MessageType.CALL) return;
      if (p.header.procedure === STORAGE_VOL_GET_INFO.number) return reply.ok(p, encode(STORAGE_VOL_GET_INFO.ret, { type: 0, capacity: data.length, allocation: data.length }));
      const args = decode(STORAGE_VOL_DOWNLOAD.args, p.payload);
      flags.push(args.flags);
      if (args.flags !== 0) return reply.error(p, 8, "unsupported flags (0x1) in function virStorageVolDownload");
      reply.ok(p);
      const head = { ...p.header, type: MessageType.STREAM, status: MessageStatus.CONTINUE };
      reply.send(head, data);
      reply.send(head);
    });
    const client = await server.client();
    const clock = createRealClock();
    const bus = createEventBus({ clock });
    const job = await startRemoteDownload({ client, jobs: createJobManager({ bus, clock }), bus }, vol, {});
    const got = new Uint8Array(await new Response(job.readable).arrayBuffer());
    await job.wait();
    expect(Buffer.from(got).equals(Buffer.from(data))).toBe(true);
    expect(flags).toEqual([VolumeStreamFlags.SPARSE_STREAM, 0]);
  });

  it("charges a capped download only for its data: a 4 GiB hole at 64 KiB/s does not wait", async () => {
    // Charged for the hole, this would take 18 hours; for its 8 KiB of data it is within the
    // limiter's first burst. The test's own timeout is the deadline.
    const hole = 4 * 2 ** 30;
    const parts: Part[] = [pattern(4096, 5), hole, pattern(4096, 6)];
    const { job } = await download(parts, 64 * 1024);
    const reader = job.readable.getReader({ mode: "byob" });
    let bytes = 0;
    let buffer = new ArrayBuffer(64 << 20);
    const ends: number[] = [];
    for (;;) {
      const { value, done } = await reader.read(new Uint8Array(buffer));
      if (done) break;
      if (bytes === 0) ends.push(value[0]!, value[4095]!, value[4096]!);
      bytes += value.byteLength;
      buffer = value.buffer;
      if (bytes === hole + 8192) ends.push(value[value.byteLength - 1]!);
    }
    await job.wait();
    expect(bytes).toBe(hole + 8192);
    expect(ends).toEqual([pattern(4096, 5)[0], pattern(4096, 5)[4095], 0, pattern(4096, 6)[4095]]);
  }, 60_000);
});
