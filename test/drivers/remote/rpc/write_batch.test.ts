/**
 * Calls in flight and the per-turn write batch: `WriteBatch` on its own (one write per turn, in order,
 * a lone frame not copied, `flush()` first, `stop()`, write errors), and an `RpcClient` with 16
 * concurrent callers over an in-memory pipe whose far end answers each round of 16 CALLs in one chunk,
 * shuffled: every reply reaches its own caller, all 16 calls are in flight at once, and the 16 calls the
 * callers make on resuming from one chunk leave in one write (what `bench/remote.bench.ts` measures
 * through libvirtd).
 */
import { describe, expect, it } from "vitest";
import type { ByteChannel } from "../../../../drivers/remote/rpc/channel.ts";
import { RpcClient } from "../../../../drivers/remote/rpc/client.ts";
import { encode } from "../../../../drivers/remote/rpc/codec.ts";
import { encodePacket, FrameDecoder, MessageStatus, MessageType, type Packet } from "../../../../drivers/remote/rpc/packet.ts";
import { CONNECT_SUPPORTS_FEATURE } from "../../../../drivers/remote/rpc/protocol/connect.ts";
import { WriteBatch } from "../../../../drivers/remote/rpc/write_batch.ts";

/** A channel that records every write (a copy) and returns `result` from it. */
function recordingChannel(result: () => Promise<void> | undefined = () => undefined) {
  const writes: Uint8Array[] = [];
  const sent: Uint8Array[] = [];
  const channel = {
    write(bytes: Uint8Array) {
      sent.push(bytes);
      writes.push(bytes.slice());
      return result();
    },
    onData() {},
    onClose() {},
    pause() {},
    resume() {},
    close() {},
  } satisfies ByteChannel;
  return { channel, writes, sent };
}

const frame = (...bytes: number[]) => new Uint8Array(bytes);

describe("WriteBatch", () => {
  it("writes the frames posted in one turn together, in order, after the turn's synchronous code", async () => {
    const { channel, writes } = recordingChannel();
    const batch = new WriteBatch(channel, () => {});
    batch.post(frame(1, 2));
    batch.post(frame(3));
    batch.post(frame(4, 5, 6));
    expect(writes).toHaveLength(0);
    await Promise.resolve();
    expect(writes.map((w) => [...w])).toEqual([[1, 2, 3, 4, 5, 6]]);
    batch.post(frame(7));
    await Promise.resolve();
    expect(writes.map((w) => [...w])).toEqual([[1, 2, 3, 4, 5, 6], [7]]);
  });

  it("hands a lone frame to the channel as it is, without a copy", async () => {
    const { channel, sent } = recordingChannel();
    const batch = new WriteBatch(channel, () => {});
    const only = frame(9, 9, 9, 9);
    batch.post(only);
    await Promise.resolve();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toBe(only);
  });

  it("flush() writes what is queued at once, so a frame written straight after it follows them", async () => {
    const { channel, writes } = recordingChannel();
    const batch = new WriteBatch(channel, () => {});
    batch.post(frame(1));
    batch.post(frame(2));
    batch.flush();
    channel.write(frame(3));
    await Promise.resolve();
    expect(writes.map((w) => [...w])).toEqual([[1, 2], [3]]);
  });

  it("stop() drops what is queued and ignores later frames", async () => {
    const { channel, writes } = recordingChannel();
    const batch = new WriteBatch(channel, () => {});
    batch.post(frame(1));
    batch.stop();
    batch.post(frame(2));
    batch.flush();
    await Promise.resolve();
    await Promise.resolve();
    expect(writes).toHaveLength(0);
  });

  it("passes a failed write's error to onError", async () => {
    const failure = new Error("EPIPE");
    const { channel } = recordingChannel(() => Promise.reject(failure));
    const errors: unknown[] = [];
    const reported = new Promise<void>((resolve) => {
      const batch = new WriteBatch(channel, (error) => {
        errors.push(error);
        resolve();
      });
      batch.post(frame(1));
    });
    await reported;
    expect(errors).toEqual([failure]);
  });
});

/**
 * An in-memory libvirt peer for CONNECT_SUPPORTS_FEATURE, which answers each call with its argument:
 * once `roundSize` calls are waiting it sends all their replies in one chunk, in a shuffled order, from
 * a later macrotask (as one socket read would bring them).
 */
function shufflingPeer(roundSize: number) {
  let deliver: (bytes: Uint8Array) => void = () => {};
  const decoder = new FrameDecoder();
  const waiting: Packet[] = [];
  const callsPerWrite: number[] = [];
  let mostWaiting = 0;
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const channel: ByteChannel = {
    write(bytes) {
      const packets = decoder.push(bytes.slice());
      callsPerWrite.push(packets.length);
      waiting.push(...packets);
      mostWaiting = Math.max(mostWaiting, waiting.length);
      if (waiting.length >= roundSize) {
        const round = waiting.splice(0, waiting.length);
        for (let i = round.length - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [round[i], round[j]] = [round[j]!, round[i]!];
        }
        const replies = round.map((p) => {
          const feature = new DataView(p.payload.buffer, p.payload.byteOffset).getInt32(0);
          return encodePacket({ ...p.header, type: MessageType.REPLY, status: MessageStatus.OK }, encode(CONNECT_SUPPORTS_FEATURE.ret, feature));
        });
        const chunk = new Uint8Array(replies.reduce((n, r) => n + r.length, 0));
        let at = 0;
        for (const reply of replies) {
          chunk.set(reply, at);
          at += reply.length;
        }
        setTimeout(() => deliver(chunk), 0);
      }
      return undefined;
    },
    onData(handler) {
      deliver = handler;
    },
    onClose() {},
    pause() {},
    resume() {},
    close() {},
  };
  return { channel, callsPerWrite, mostWaiting: () => mostWaiting };
}

describe("RpcClient with 16 concurrent callers", () => {
  it("has all 16 calls in flight, matches shuffled replies to their callers, and sends each round in one write", async () => {
    const CALLERS = 16;
    const ROUNDS = 20;
    const peer = shufflingPeer(CALLERS);
    const client = new RpcClient(peer.channel);
    const got: number[][] = Array.from({ length: CALLERS }, () => []);
    await Promise.all(Array.from({ length: CALLERS }, async (_, caller) => {
      for (let round = 0; round < ROUNDS; round++) got[caller]!.push(await client.call(CONNECT_SUPPORTS_FEATURE, caller * 1000 + round));
    }));
    for (let caller = 0; caller < CALLERS; caller++) {
      expect(got[caller]).toEqual(Array.from({ length: ROUNDS }, (_, round) => caller * 1000 + round));
    }
    expect(peer.mostWaiting()).toBe(CALLERS);
    // The first round leaves in one write as the callers start; every later one as they resume from
    // one chunk of replies.
    expect(peer.callsPerWrite).toEqual(Array.from({ length: ROUNDS }, () => CALLERS));
    expect(client.pendingCalls).toBe(0);
    client.close();
  });
});
