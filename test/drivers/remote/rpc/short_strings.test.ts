/**
 * The decode caches of short strings and UUIDs (drivers/remote/rpc/short_strings.ts) as the XDR reader
 * uses them: whatever the cache holds, every read returns the string of the bytes read, through
 * evictions, slot collisions, the same bytes at other offsets, and the strings the cache leaves alone
 * (long, non-ASCII, bad padding, over the bound).
 */
import { describe, expect, it } from "vitest";
import { decode, encode, string } from "../../../../drivers/remote/rpc/codec.ts";
import { domainRef, uuid } from "../../../../drivers/remote/rpc/protocol/common.ts";
import { XdrError, XdrReader, XdrWriter } from "../../../../drivers/remote/rpc/xdr.ts";

const randomUuid = () => crypto.randomUUID();

describe("decode caches", () => {
  it("decodes 5000 distinct short names (far more than its slots) right, twice over", () => {
    const names = Array.from({ length: 5000 }, (_, i) => `vm-${i.toString(36)}-${"x".repeat(i % 20)}`);
    const w = new XdrWriter();
    for (const name of names) w.string(name);
    const bytes = w.finish().slice();
    for (let pass = 0; pass < 2; pass++) {
      const r = new XdrReader(bytes);
      expect(names.map(() => r.string(64))).toEqual(names);
      expect(r.remaining).toBe(0);
    }
  });

  it("returns each string of the same bytes wherever they sit, and strings one byte apart apart", () => {
    const a = encode(string(64), "test");
    const shifted = new Uint8Array(a.length + 3);
    shifted.set(a, 3);
    expect(new XdrReader(a).string(64)).toBe("test");
    expect(new XdrReader(shifted.subarray(3)).string(64)).toBe("test");
    expect(decode(string(64), encode(string(64), "tesu"))).toBe("tesu");
    expect(decode(string(64), encode(string(64), "tes"))).toBe("tes");
    expect(decode(string(64), encode(string(64), ""))).toBe("");
  });

  it("leaves long and non-ASCII strings to the general path, and still refuses what is malformed", () => {
    for (const text of ["é-domain", "x".repeat(33), "x".repeat(5000), "名前"]) expect(decode(string(1 << 20), encode(string(1 << 20), text))).toBe(text);
    // Over its bound: refused even though it is short.
    expect(() => decode(string(3), encode(string(64), "test"))).toThrow(XdrError);
    // Non-zero padding after a short ASCII string.
    const bad = encode(string(64), "abc");
    bad[7] = 1;
    expect(() => decode(string(64), bad)).toThrow(/padding/);
    // Cut short.
    expect(() => decode(string(64), encode(string(64), "abcdef").subarray(0, 7))).toThrow(XdrError);
  });

  it("decodes 2000 distinct UUIDs right, twice over, and a domain reference's UUID", () => {
    const uuids = Array.from({ length: 2000 }, randomUuid);
    const w = new XdrWriter();
    for (const u of uuids) uuid.encode(w, u);
    const bytes = w.finish().slice();
    for (let pass = 0; pass < 2; pass++) {
      const r = new XdrReader(bytes);
      expect(uuids.map(() => uuid.decode(r))).toEqual(uuids);
    }
    const ref = { name: "web1", uuid: uuids[7]!, id: 3 };
    expect(decode(domainRef, encode(domainRef, ref))).toEqual(ref);
    expect(() => decode(uuid, new Uint8Array(15))).toThrow(XdrError);
  });
});
