/**
 * The LUN read-ahead over a scripted range reader: in-order reads are served from what was asked for
 * ahead (each range read once), anything else reads directly, a failed read ahead is repeated, a buffer
 * still being filled by a dropped read ahead is never handed out again, and nothing past the end is read.
 */
import { describe, expect, it } from "vitest";
import { ReadAhead } from "../../../drivers/iscsi/read_ahead.ts";

/** A reader whose reads finish when the test says so; each fills its target with `offset / 4 + fill`. */
function scripted(fill = 0) {
  const calls: Array<{ offset: number; target: Uint8Array; finish: (error?: Error) => void }> = [];
  const reader = (offset: number, target: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      calls.push({ offset, target, finish: (error) => (error ? reject(error) : (target.fill(offset / 4 + fill), resolve())) });
    });
  const finishAll = () => {
    for (const c of calls) c.finish();
  };
  return { calls, reader, finishAll };
}

async function settled(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

describe("ReadAhead", () => {
  it("serves in-order reads from the reads it asked for ahead, reading each range once", async () => {
    const asked: number[] = [];
    const ahead = new ReadAhead(async (offset, target) => {
      asked.push(offset);
      target.fill(offset / 4);
    }, 40, 8);
    const seen: number[] = [];
    for (let offset = 0; offset < 40; offset += 4) {
      const target = new Uint8Array(4);
      await ahead.read(offset, target);
      seen.push(target[0]!);
    }
    await ahead.drain();
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...asked].sort((a, b) => a - b)).toEqual([0, 4, 8, 12, 16, 20, 24, 28, 32, 36]);
  });

  it("keeps at most aheadBytes in flight beyond the caller, and never asks past the end", async () => {
    const { calls, reader, finishAll } = scripted();
    const ahead = new ReadAhead(reader, 20, 8);
    const first = ahead.read(0, new Uint8Array(4));
    calls[0]!.finish();
    await first;
    const second = ahead.read(4, new Uint8Array(4));
    await settled();
    // The caller's read at 4, plus two ahead (8 and 12): 8 bytes beyond it.
    expect(calls.map((c) => c.offset)).toEqual([0, 8, 12, 4]);
    finishAll();
    await second;
    for (const offset of [8, 12, 16]) {
      const read = ahead.read(offset, new Uint8Array(4));
      await settled();
      finishAll();
      await read;
    }
    await ahead.drain();
    expect(Math.max(...calls.map((c) => c.offset))).toBe(16);
  });

  it("a read out of order drops the read ahead; its buffer, still being filled, is not reused", async () => {
    const { calls, reader } = scripted();
    const ahead = new ReadAhead(reader, 64, 8);
    for (const offset of [0, 4]) {
      const read = ahead.read(offset, new Uint8Array(4));
      await settled();
      calls.find((c) => c.offset === offset)!.finish();
      await read;
    }
    const stale = calls.filter((c) => c.offset === 8 || c.offset === 12);
    expect(stale.length).toBe(2);
    const target = new Uint8Array(4);
    const jump = ahead.read(40, target);
    await settled();
    calls.find((c) => c.offset === 40)!.finish();
    await jump;
    expect([...target]).toEqual([10, 10, 10, 10]);
    // Later reads in order must not get the dropped buffers, which their late reads still fill.
    const next = new Uint8Array(4);
    const inOrder = ahead.read(44, next);
    await settled();
    for (const c of stale) c.finish();
    for (const c of calls.filter((c) => c.offset >= 44)) c.finish();
    await inOrder;
    expect([...next]).toEqual([11, 11, 11, 11]);
    // Read on in order: served read-ahead buffers are recycled for new reads ahead, the stale ones never.
    for (let offset = 48; offset < 64; offset += 4) {
      const read = ahead.read(offset, new Uint8Array(4));
      await settled();
      for (const c of calls) c.finish();
      await read;
      await settled();
    }
    await ahead.drain();
    const staleBuffers = new Set(stale.map((c) => c.target.buffer));
    const later = calls.filter((c) => c.offset >= 48);
    expect(new Set(calls.map((c) => c.target.buffer)).size).toBeLessThan(calls.length); // reuse did happen
    expect(later.some((c) => staleBuffers.has(c.target.buffer))).toBe(false);
  });

  it("repeats a read whose read ahead failed, and drop() (after a write) makes the next read direct", async () => {
    let failAt = 8;
    const asked: number[] = [];
    const ahead = new ReadAhead(async (offset, target) => {
      asked.push(offset);
      if (offset === failAt) {
        failAt = -1;
        throw new Error("transient");
      }
      target.fill(offset / 4);
    }, 64, 4);
    const t = new Uint8Array(4);
    await ahead.read(0, t);
    await ahead.read(4, t); // asks for 8 ahead, which fails
    await ahead.read(8, t);
    expect([...t]).toEqual([2, 2, 2, 2]);
    expect(asked.filter((o) => o === 8).length).toBe(2);
    ahead.drop();
    const before = asked.length;
    await ahead.read(12, t);
    expect(asked.slice(before)).toEqual([12]);
    await ahead.drain();
  });
});
