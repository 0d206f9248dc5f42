/**
 * The XDR primitives and schema codecs: byte-exact encodings of libvirt shapes (captured from virsh and
 * libvirtd, reference/libvirt-rpc.md), round trips, and typed errors for everything malformed.
 */
import { describe, expect, it } from "vitest";
import { array, charArray, decode, encode, int, optional, string, struct, uhyper } from "../../../../drivers/remote/rpc/codec.ts";
import { CONNECT_OPEN } from "../../../../drivers/remote/rpc/protocol/connect.ts";
import { DOMAIN_BLOCK_PULL, DOMAIN_GET_INFO } from "../../../../drivers/remote/rpc/protocol/domain.ts";
import { domainRef, remoteError, typedParams, TypedParamType } from "../../../../drivers/remote/rpc/protocol/common.ts";
import { XdrError } from "../../../../drivers/remote/rpc/xdr.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f";

describe("XDR codecs", () => {
  it("encodes CONNECT_OPEN args as virsh does", () => {
    // Captured: 00000001 0000000f "qemu:///session" 00 00000000
    expect(hex(encode(CONNECT_OPEN.args, { name: "qemu:///session", flags: 0 }))).toBe(
      "00000001" + "0000000f" + Buffer.from("qemu:///session").toString("hex") + "00" + "00000000",
    );
  });

  it("encodes a domain reference with a raw 16-byte UUID and id -1", () => {
    const bytes = encode(domainRef, { name: "vm", uuid: UUID, id: -1 });
    expect(hex(bytes)).toBe("00000002" + "766d0000" + UUID.replace(/-/g, "") + "ffffffff");
    expect(decode(domainRef, bytes)).toEqual({ name: "vm", uuid: UUID, id: -1 });
  });

  it("round-trips block pull args with a 64-bit bandwidth", () => {
    const args = { dom: { name: "vm", uuid: UUID, id: 3 }, path: "vda", bandwidth: 2 ** 40 + 5, flags: 64 };
    const bytes = encode(DOMAIN_BLOCK_PULL.args, args);
    expect(hex(bytes.subarray(bytes.length - 12))).toBe("0000010000000005" + "00000040");
    expect(decode(DOMAIN_BLOCK_PULL.args, bytes)).toEqual(args);
  });

  it("reads uchar and ushort fields as 4-byte words", () => {
    const info = { state: 5, maxMem: 1024, memory: 512, nrVirtCpu: 2, cpuTime: 1714000000000000000000n % (2n ** 64n) };
    const bytes = encode(DOMAIN_GET_INFO.ret, info);
    expect(bytes.length).toBe(4 + 8 + 8 + 4 + 8);
    expect(decode(DOMAIN_GET_INFO.ret, bytes)).toEqual(info);
  });

  it("encodes char arrays one word per character", () => {
    const codec = charArray(257);
    const bytes = encode(codec, "none");
    expect(hex(bytes)).toBe("00000005" + "0000006e" + "0000006f" + "0000006e" + "00000065" + "00000000");
    expect(decode(codec, bytes)).toBe("none");
  });

  it("round-trips typed parameters of every type and the error record", () => {
    const params = [
      { field: "bandwidth", value: { type: TypedParamType.ULLONG, value: 1048576 } },
      { field: "s", value: { type: TypedParamType.STRING, value: "x" } },
      { field: "b", value: { type: TypedParamType.BOOLEAN, value: true } },
      { field: "d", value: { type: TypedParamType.DOUBLE, value: 1.5 } },
    ];
    expect(decode(typedParams(16), encode(typedParams(16), params))).toEqual(params);
    const record = { code: 42, domain: 10, message: "no", level: 2, dom: undefined, str1: "a", str2: undefined, str3: undefined, int1: -1, int2: 0, net: undefined };
    expect(decode(remoteError, encode(remoteError, record))).toEqual(record);
  });

  it("rejects non-zero padding, short input, oversized bounds and trailing bytes with XdrError", () => {
    const s = string(10);
    expect(() => decode(s, new Uint8Array([0, 0, 0, 1, 0x61, 1, 0, 0]))).toThrow(XdrError);
    expect(() => decode(s, new Uint8Array([0, 0, 0, 3, 0x61]))).toThrow(/needs 4 bytes/);
    expect(() => decode(s, new Uint8Array([0, 0, 0, 11, ...new Array(12).fill(0x61)]))).toThrow(/bound 10/);
    expect(() => decode(int, new Uint8Array(8))).toThrow(/left over/);
    expect(() => decode(optional(int), new Uint8Array([0, 0, 0, 2]))).toThrow(/not 0 or 1/);
    expect(() => decode(array(int, 100), new Uint8Array([0, 0, 0, 50]))).toThrow(/claims 50 items/);
    expect(() => decode(uhyper, new Uint8Array([0xff, 0, 0, 0, 0, 0, 0, 0]))).toThrow(/safe integer/);
    expect(() => decode(string(10), new Uint8Array([0, 0, 0, 2, 0xc3, 0x28, 0, 0]))).toThrow(/UTF-8/);
  });

  it("accepts an upper-case UUID and decodes every byte value back in lower case", () => {
    const bytes = encode(domainRef, { name: "vm", uuid: UUID.toUpperCase(), id: 1 });
    expect(decode(domainRef, bytes).uuid).toBe(UUID);
    const all = "00010203-0405-0607-f8f9-fafbfcfdfeff";
    expect(decode(domainRef, encode(domainRef, { name: "vm", uuid: all, id: 1 })).uuid).toBe(all);
  });

  it("refuses to encode values outside their type", () => {
    expect(() => encode(int, 2 ** 31)).toThrow(RangeError);
    expect(() => encode(uhyper, -1)).toThrow(RangeError);
    expect(() => encode(array(int, 1), [1, 2])).toThrow(RangeError);
    expect(() => encode(domainRef, { name: "vm", uuid: "nope", id: 1 })).toThrow(TypeError);
    // One wrong character anywhere, or a dash out of place, is refused too.
    expect(() => encode(domainRef, { name: "vm", uuid: UUID.replace(/.$/, "g"), id: 1 })).toThrow(TypeError);
    expect(() => encode(domainRef, { name: "vm", uuid: UUID.replace("-", "0"), id: 1 })).toThrow(TypeError);
    expect(() => encode(domainRef, { name: "vm", uuid: `${UUID}0`, id: 1 })).toThrow(TypeError);
    expect(() => encode(struct({ a: int }), null as never)).toThrow(TypeError);
  });

  it("keeps non-ASCII strings intact", () => {
    expect(decode(string(100), encode(string(100), "Grüße ✓"))).toBe("Grüße ✓");
  });
});
