import { describe, expect, it } from "vitest";
import { createMemoryFile } from "../../../core/image/memory_file.ts";

describe("createMemoryFile", () => {
  it("is sparse: far writes cost one page; holes read as zeros; short reads at the end", async () => {
    const file = createMemoryFile(Uint8Array.of(1, 2, 3));
    await file.write(2 ** 40, Uint8Array.of(9));
    expect(file.storedBytes()).toBe(2 * 65536);
    expect(await file.size()).toBe(2 ** 40 + 1);
    const buf = new Uint8Array(8).fill(7);
    expect(await file.read(1, buf)).toBe(8);
    expect([...buf]).toEqual([2, 3, 0, 0, 0, 0, 0, 0]);
    expect(await file.read(2 ** 40, buf)).toBe(1);
    expect(await file.read(2 ** 41, buf)).toBe(0);
  });

  it("truncate shrinks (dropping bytes) and grows with zeros; flushes are counted", async () => {
    const file = createMemoryFile(new Uint8Array(100_000).fill(5));
    await file.truncate(70_000);
    await file.truncate(100_000);
    const buf = new Uint8Array(2);
    await file.read(69_999, buf);
    expect([...buf]).toEqual([5, 0]);
    await file.flush();
    expect(file.flushCount).toBe(1);
  });

  it("rejects bad offsets and any use after close", async () => {
    const file = createMemoryFile();
    await expect(file.write(-1, new Uint8Array(1))).rejects.toBeInstanceOf(RangeError);
    await expect(file.read(0.5, new Uint8Array(1))).rejects.toBeInstanceOf(RangeError);
    await file.close();
    await expect(file.size()).rejects.toThrow(/closed/);
    await expect(file.flush()).rejects.toThrow(/closed/);
  });
});
