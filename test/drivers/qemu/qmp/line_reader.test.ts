import { describe, expect, it } from "vitest";
import { QmpProtocolError } from "../../../../drivers/qemu/qmp/errors.ts";
import { DEFAULT_MAX_LINE_BYTES, LineSplitter } from "../../../../drivers/qemu/qmp/line_reader.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("LineSplitter", () => {
  it("joins a line split across chunks and splits many lines in one chunk", () => {
    const splitter = new LineSplitter();
    expect(splitter.push(bytes('{"a":'))).toEqual([]);
    expect(splitter.bufferedBytes).toBe(5);
    expect(splitter.push(bytes('1}\r\n{"b":2}\r\n{"c"'))).toEqual(['{"a":1}', '{"b":2}']);
    expect(splitter.push(bytes(":3}\n"))).toEqual(['{"c":3}']);
    expect(splitter.bufferedBytes).toBe(0);
  });

  it("gives the same lines whatever the chunking, byte by byte included", () => {
    const text = '{"QMP":{}}\r\n{"return":{},"id":1}\r\n{"event":"STOP"}\r\n';
    const whole = new LineSplitter().push(bytes(text));
    for (const size of [1, 2, 3, 7, 64]) {
      const splitter = new LineSplitter();
      const lines: string[] = [];
      const all = bytes(text);
      for (let i = 0; i < all.length; i += size) lines.push(...splitter.push(all.subarray(i, i + size)));
      expect(lines).toEqual(whole);
    }
    expect(whole).toHaveLength(3);
  });

  it("decodes a multi-byte character split between chunks", () => {
    const splitter = new LineSplitter();
    const all = bytes('{"desc":"Größe ✓"}\n');
    const cut = all.indexOf(0xc3) + 1;
    expect(splitter.push(all.subarray(0, cut))).toEqual([]);
    expect(splitter.push(all.subarray(cut))).toEqual(['{"desc":"Größe ✓"}']);
  });

  it("skips blank lines", () => {
    expect(new LineSplitter().push(bytes("\r\n\n  \r\nx\n"))).toEqual(["x"]);
  });

  it("does not keep the caller's buffer, which may be reused", () => {
    const splitter = new LineSplitter();
    const chunk = bytes("abc");
    splitter.push(chunk);
    chunk.fill(0x7a);
    expect(splitter.push(bytes("d\n"))).toEqual(["abcd"]);
  });

  it("accepts a line of exactly the limit and refuses one byte more before its end arrives", () => {
    expect(new LineSplitter({ maxLineBytes: 8 }).push(bytes("12345678\r\n"))).toEqual(["12345678"]);
    const crSplit = new LineSplitter({ maxLineBytes: 8 });
    expect(crSplit.push(bytes("12345678\r"))).toEqual([]);
    expect(crSplit.push(bytes("\n"))).toEqual(["12345678"]);
    const splitter = new LineSplitter({ maxLineBytes: 8 });
    splitter.push(bytes("1234"));
    expect(() => splitter.push(bytes("567890"))).toThrow(QmpProtocolError);
    expect(splitter.bufferedBytes).toBe(0);
    expect(() => new LineSplitter({ maxLineBytes: 8 }).push(bytes("123456789\n"))).toThrow(/limit of 8 bytes/);
  });

  it("refuses invalid UTF-8 with QmpProtocolError", () => {
    expect(() => new LineSplitter().push(new Uint8Array([0x22, 0xc3, 0x28, 0x22, 0x0a]))).toThrow(QmpProtocolError);
  });

  it("defaults to a 16 MiB limit and rejects bad limits with RangeError", () => {
    expect(DEFAULT_MAX_LINE_BYTES).toBe(16 * 1024 * 1024);
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity]) {
      expect(() => new LineSplitter({ maxLineBytes: bad })).toThrow(RangeError);
    }
  });
});
