/**
 * The initiator's wire pieces without a target: BHS fields, PDU framing across any chunk boundary,
 * text keys, CHAP's response against RFC 1994's construction, LUN addressing, the pool's names and URLs,
 * and the pool definition's schema.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { chapResponse, decodeChapBinary } from "../../../drivers/iscsi/initiator/chap.ts";
import { BHS_BYTES, decodeHeader, decodeLun, encodeHeader, encodeLun, FINAL, Op, snGreater, u32 } from "../../../drivers/iscsi/initiator/pdu.ts";
import { PduReader } from "../../../drivers/iscsi/initiator/pdu_reader.ts";
import { parseSense } from "../../../drivers/iscsi/initiator/scsi.ts";
import { decodeTextPairs, encodeText } from "../../../drivers/iscsi/initiator/text_keys.ts";
import { lunOfVolumeName, lunUrl, lunVolumeName, parseIscsiUrl } from "../../../drivers/iscsi/mod.ts";
import { checkPoolConfig } from "../../../core/config/pool_config.ts";

function pdu(opcode: number, itt: number, data: Uint8Array, offset = 0): Uint8Array {
  const header = encodeHeader({ opcode, flags: FINAL, itt, words: [0, 0, 0, 0, 0, offset], data });
  const pad = (4 - (data.byteLength % 4)) % 4;
  const out = new Uint8Array(header.byteLength + data.byteLength + pad);
  out.set(header);
  out.set(data, BHS_BYTES);
  return out;
}

describe("BHS", () => {
  it("puts the fields where RFC 7143 says", () => {
    const cdb = new Uint8Array([0x88, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 8, 0, 0]);
    const bhs = encodeHeader({ opcode: Op.scsiCommand, flags: 0xc1, lunOrIsid: encodeLun(5), itt: 0x01020304, words: [4096, 77, 9], cdb });
    expect(bhs.byteLength).toBe(48);
    expect(bhs[0]).toBe(0x01);
    expect(bhs[1]).toBe(0xc1);
    expect(bhs[9]).toBe(5);
    expect(u32(bhs, 16)).toBe(0x01020304);
    expect(u32(bhs, 20)).toBe(4096); // expected data transfer length
    expect(u32(bhs, 24)).toBe(77); // CmdSN
    expect(u32(bhs, 28)).toBe(9); // ExpStatSN
    expect([...bhs.subarray(32)]).toEqual([...cdb]);
    const h = decodeHeader(bhs);
    expect([h.opcode, h.flags, h.dataBytes, h.itt]).toEqual([Op.scsiCommand, 0xc1, 0, 0x01020304]);
  });

  it("refuses a data segment the 24-bit length cannot carry", () => {
    expect(() => encodeHeader({ opcode: Op.dataOut, flags: FINAL, itt: 1, data: new Uint8Array(1 << 24) })).toThrow(RangeError);
  });

  it("encodes LUNs with peripheral and flat addressing and compares sequence numbers modulo 2^32", () => {
    expect([...encodeLun(0)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect([...encodeLun(300).subarray(0, 2)]).toEqual([0x41, 0x2c]);
    for (const lun of [0, 1, 255, 256, 16383]) expect(decodeLun(encodeLun(lun))).toBe(lun);
    expect(decodeLun(new Uint8Array([0xc0, 0, 0, 0, 0, 0, 0, 0]))).toBeUndefined();
    expect(() => encodeLun(16384)).toThrow(RangeError);
    expect(snGreater(0, 0xffffffff)).toBe(true);
    expect(snGreater(0xffffffff, 0)).toBe(false);
    expect(snGreater(7, 7)).toBe(false);
  });
});

describe("PduReader", () => {
  const payloads = [new Uint8Array([1, 2, 3, 4, 5]), new Uint8Array(0), new Uint8Array(1000).map((_, i) => i % 251)];
  const wire = new Uint8Array(payloads.reduce((n, p) => n + 48 + p.byteLength + ((4 - (p.byteLength % 4)) % 4), 0));
  let at = 0;
  payloads.forEach((p, i) => {
    const one = pdu(Op.textResponse, i + 1, p);
    wire.set(one, at);
    at += one.byteLength;
  });

  it("finds the same PDUs whatever the chunk boundaries", () => {
    for (const chunkBytes of [1, 3, 47, 48, 49, 500, wire.byteLength]) {
      const seen: Array<[number, number[]]> = [];
      const reader = new PduReader({ place: () => undefined, pdu: (h, data) => seen.push([h.itt, [...data!]]) });
      for (let i = 0; i < wire.byteLength; i += chunkBytes) reader.push(wire.subarray(i, i + chunkBytes));
      expect(seen, `chunks of ${chunkBytes}`).toEqual(payloads.map((p, i) => [i + 1, [...p]]));
    }
  });

  it("places Data-In straight into the buffer it is given, at its buffer offset", () => {
    const target = new Uint8Array(16);
    const data = new Uint8Array([9, 8, 7, 6, 5, 4, 3, 2]);
    const wire2 = pdu(Op.dataIn, 7, data, 4);
    let placed = 0;
    const reader = new PduReader({
      place: (h) => target.subarray(u32(h.bytes, 40), u32(h.bytes, 40) + h.dataBytes),
      pdu: (_h, gathered) => {
        expect(gathered).toBeUndefined();
        placed++;
      },
    });
    for (let i = 0; i < wire2.byteLength; i += 5) reader.push(wire2.subarray(i, i + 5));
    expect(placed).toBe(1);
    expect([...target]).toEqual([0, 0, 0, 0, 9, 8, 7, 6, 5, 4, 3, 2, 0, 0, 0, 0]);
  });

  it("skips an AHS and the padding after the data segment", () => {
    const header = encodeHeader({ opcode: Op.textResponse, flags: FINAL, itt: 3, data: new Uint8Array(3) });
    header[4] = 2; // 8 bytes of AHS
    const wire = new Uint8Array([...header, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 7, 8, 9, 0xee, ...pdu(Op.nopIn, 4, new Uint8Array(0))]);
    const seen: Array<[number, number[]]> = [];
    const reader = new PduReader({ place: () => undefined, pdu: (h, data) => seen.push([h.itt, [...data!]]) });
    for (let i = 0; i < wire.byteLength; i += 7) reader.push(wire.subarray(i, i + 7));
    expect(seen).toEqual([[3, [7, 8, 9]], [4, []]]);
  });
});

describe("text keys and CHAP", () => {
  it("round-trips pairs in order, repeated keys kept, and refuses NUL or '=' in keys", () => {
    const pairs: Array<[string, string]> = [["TargetName", "iqn.a"], ["TargetAddress", "1.1.1.1:3260,1"], ["TargetAddress", "[::1]:3260,1"]];
    expect(decodeTextPairs(encodeText(pairs))).toEqual(pairs);
    expect(() => encodeText([["A=B", "x"]])).toThrow(TypeError);
    expect(() => encodeText([["A", "x\0"]])).toThrow(TypeError);
  });

  it("answers a challenge with MD5(id || secret || challenge)", () => {
    const challenge = decodeChapBinary("0x00ff10aa");
    expect([...challenge]).toEqual([0, 255, 16, 170]);
    expect([...decodeChapBinary("0bAP8Qqg==")]).toEqual([0, 255, 16, 170]);
    const expected = createHash("md5").update(Uint8Array.of(42)).update("s3cret-s3cret").update(challenge).digest("hex");
    expect(chapResponse(42, "s3cret-s3cret", challenge)).toBe(`0x${expected}`);
    // A different identifier gives a different response: the id is part of what is hashed.
    expect(chapResponse(43, "s3cret-s3cret", challenge)).not.toBe(`0x${expected}`);
    expect(() => decodeChapBinary("plain")).toThrow(TypeError);
  });

  it("reads fixed and descriptor sense data", () => {
    const fixed = new Uint8Array(18);
    fixed.set([0x70, 0, 0x06], 0);
    fixed[12] = 0x29;
    fixed[13] = 0x01;
    expect(parseSense(fixed)).toEqual({ senseKey: 6, asc: 0x29, ascq: 1 });
    expect(parseSense(new Uint8Array([0x72, 0x05, 0x25, 0x00]))).toEqual({ senseKey: 5, asc: 0x25, ascq: 0 });
  });
});

describe("names, URLs and the pool definition", () => {
  it("names LUN volumes unit:0:0:N and their keys iscsi:// URLs", () => {
    expect(lunVolumeName(7)).toBe("unit:0:0:7");
    expect(lunOfVolumeName("unit:0:0:7")).toBe(7);
    for (const bad of ["unit:0:0:07", "unit:0:1:7", "unit:0:0:99999", "7"]) expect(lunOfVolumeName(bad), bad).toBeUndefined();
    const url = lunUrl({ host: "127.0.0.1", port: 3261 }, "iqn.2026-12.test:t", 2);
    expect(url).toBe("iscsi://127.0.0.1:3261/iqn.2026-12.test:t/2");
    expect(parseIscsiUrl(url)).toEqual({ host: "127.0.0.1", port: 3261, target: "iqn.2026-12.test:t", lun: 2 });
    expect(parseIscsiUrl("iscsi://me%p%40ss@[::1]/iqn.2026-12.test:t/0")).toEqual({ host: "::1", port: 3260, target: "iqn.2026-12.test:t", lun: 0, auth: { username: "me", password: "p@ss" } });
    expect(parseIscsiUrl("iscsi://me%p%zz@h/iqn.2026-12.test:t/0")).toBeUndefined();
    expect(parseIscsiUrl("iscsi://h/iqn.2026-12.test:t")).toBeUndefined();
  });

  it("accepts a full definition and names the field of a bad one", () => {
    const good = { name: "san", type: "iscsi", host: "127.0.0.1", port: 3261, target: "iqn.2026-12.test:t", initiator: "iqn.2026-12.test:me", auth: { type: "chap", username: "u", password: "p" } };
    expect(checkPoolConfig(good)).toEqual(good);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...good, port: 70000 }, "port: 70000: it is not a whole number from 1 to 65535"],
      [{ ...good, port: "3260" }, 'port: expected number, got "3260"'],
      [{ ...good, target: "disk1" }, "target must be an iSCSI name"],
      [{ ...good, host: "a b" }, "host must be a host name"],
      [Object.fromEntries(Object.entries(good).filter(([k]) => k !== "host")), "host: is required"],
      [{ ...good, taget: "x" }, 'unknown field "taget"'],
      [{ ...good, auth: { type: "chap", username: "u" } }, "auth.password"],
      [{ ...good, auth: { type: "kerberos", username: "u", password: "p" } }, 'auth.type: is "kerberos", expected "chap"'],
    ];
    for (const [config, message] of cases) {
      expect(() => checkPoolConfig(config as never), message).toThrow(Error);
      expect(() => checkPoolConfig(config as never)).toThrow(message);
    }
  });
});
