/**
 * Fuzzing the decoder: thousands of mutated frames (bit flips, truncations, insertions, rewritten length
 * words) built from message shapes captured on the wire between virsh, python3-libvirt and libvirtd 9.0
 * (reference/libvirt-rpc.md). Each goes through the frame decoder and then through its procedure's argument
 * and reply codecs, the error record and a random sample of the other codecs: the only errors allowed are the protocol's own typed
 * ones (`ProtocolError`, of which `XdrError` is one); no `RangeError`, no `TypeError`, no hang.
 */
import { describe, expect, it } from "vitest";
import { decode, encode } from "../../../../drivers/remote/rpc/codec.ts";
import { encodePacket, FrameDecoder, MessageType, REMOTE_PROGRAM } from "../../../../drivers/remote/rpc/packet.ts";
import { remoteError, streamHole } from "../../../../drivers/remote/rpc/protocol/common.ts";
import { DOMAIN_GET_BLOCK_JOB_INFO, DOMAIN_GET_INFO } from "../../../../drivers/remote/rpc/protocol/domain.ts";
import { DOMAIN_EVENT_BLOCK_JOB_2, DOMAIN_EVENT_CALLBACK_LIFECYCLE } from "../../../../drivers/remote/rpc/protocol/events.ts";
import { REMOTE_PROCEDURES } from "../../../../drivers/remote/rpc/protocol/mod.ts";
import { CONNECT_LIST_ALL_STORAGE_POOLS } from "../../../../drivers/remote/rpc/protocol/storage.ts";
import { ProtocolError } from "../../../../drivers/remote/rpc/protocol_error.ts";
import { RpcStream } from "../../../../drivers/remote/rpc/stream.ts";

const UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f";
const dom = { name: "test", uuid: UUID, id: 1 };
const hdr = (procedure: number, type: number, serial: number, status = 0) => ({ program: REMOTE_PROGRAM, version: 1, procedure, type, serial, status });

/** Frames of the shapes seen on the wire. */
const SEEDS: Uint8Array[] = [
  // virsh's first message, byte for byte: AUTH_LIST with no payload.
  Uint8Array.from(Buffer.from("0000001c200080860000000100000042000000000000000000000000", "hex")),
  // CONNECT_OPEN args as virsh sends them.
  encodePacket(hdr(1, MessageType.CALL, 1), Uint8Array.from(Buffer.from("000000010000000f71656d753a2f2f2f73657373696f6e0000000000", "hex"))),
  encodePacket(hdr(16, MessageType.REPLY, 5), encode(DOMAIN_GET_INFO.ret, { state: 1, maxMem: 8388608, memory: 2097152, nrVirtCpu: 2, cpuTime: 123456789n })),
  encodePacket(hdr(238, MessageType.REPLY, 9), encode(DOMAIN_GET_BLOCK_JOB_INFO.ret, { found: 1, type: 1, bandwidth: 10485760, cur: 4096, end: 1 << 30 })),
  encodePacket(hdr(339, MessageType.MESSAGE, 1), encode(DOMAIN_EVENT_BLOCK_JOB_2.args, { callbackID: 1, dom, dst: "vda", type: 1, status: 0 })),
  encodePacket(hdr(318, MessageType.MESSAGE, 1), encode(DOMAIN_EVENT_CALLBACK_LIFECYCLE.args, { callbackID: 2, msg: { dom, event: 2, detail: 0 } })),
  encodePacket(hdr(281, MessageType.REPLY, 3), encode(CONNECT_LIST_ALL_STORAGE_POOLS.ret, { pools: [{ name: "default-pool", uuid: UUID }], ret: 1 })),
  encodePacket(hdr(23, MessageType.REPLY, 4, 1), encode(remoteError, {
    code: 42, domain: 12, message: "Domain not found: no domain with matching name 'x'", level: 2,
    dom: undefined, str1: "x", str2: undefined, str3: undefined, int1: -1, int2: -1, net: undefined,
  })),
  encodePacket(hdr(209, MessageType.STREAM, 7, 2), new Uint8Array(333).fill(0xab)),
  // A hole of a sparse download, as libvirtd sends it.
  encodePacket(hdr(209, MessageType.STREAM_HOLE, 7, 2), encode(streamHole, { length: 1 << 20, flags: 0 })),
];

/** A sparse download's stream, for the hole frames (they are checked where they are received). */
const sparseStream = () => new RpcStream({ procedure: 209, serial: 7, holes: true, send: async () => {}, hold: (b) => b.slice(), release() {}, pauseChannel() {}, resumeChannel() {}, mapError: () => new ProtocolError("error frame"), done() {} });

/** A small deterministic PRNG (mulberry32), so a failure is reproducible from its iteration. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(frame: Uint8Array, rand: () => number): Uint8Array {
  const out = Uint8Array.from(frame);
  const kind = Math.floor(rand() * 5);
  const at = Math.floor(rand() * out.length);
  if (kind === 0) {
    for (let i = 0, n = 1 + Math.floor(rand() * 4); i < n; i++) out[Math.floor(rand() * out.length)]! ^= 1 << Math.floor(rand() * 8);
    return out;
  }
  if (kind === 1) return out.subarray(0, at);
  if (kind === 2) {
    const extra = Uint8Array.from({ length: 1 + Math.floor(rand() * 12) }, () => Math.floor(rand() * 256));
    const grown = new Uint8Array(out.length + extra.length);
    grown.set(out.subarray(0, at));
    grown.set(extra, at);
    grown.set(out.subarray(at), at + extra.length);
    new DataView(grown.buffer).setUint32(0, grown.length); // keep the frame whole so the payload is decoded
    return grown;
  }
  if (kind === 3) {
    // Rewrite one word of the payload with an extreme value (lengths, counts, discriminants).
    const words = [0, 1, 2, 3, 0x7fffffff, 0x80000000, 0xffffffff, 16777216, 4194305];
    const pos = 28 + 4 * Math.floor(rand() * Math.max(1, (out.length - 28) / 4));
    if (pos + 4 <= out.length) new DataView(out.buffer).setUint32(pos, words[Math.floor(rand() * words.length)]!);
    return out;
  }
  new DataView(out.buffer).setUint32(0, [0, 3, 27, 28, out.length + 1, 0xffffffff][Math.floor(rand() * 6)]!);
  return out;
}

const CODECS = [remoteError, streamHole, ...[...REMOTE_PROCEDURES.values()].flatMap((p) => [p.args, p.ret])];

describe("decoder fuzz", () => {
  it("answers 5,000 mutated frames with typed errors only", () => {
    const rand = prng(20261201);
    let decodedFrames = 0;
    let typedErrors = 0;
    for (let i = 0; i < 5000; i++) {
      const frame = mutate(SEEDS[i % SEEDS.length]!, rand);
      const check = (run: () => unknown) => {
        try {
          run();
        } catch (error) {
          if (!(error instanceof ProtocolError)) throw new Error(`iteration ${i}: ${String(error)} is not a ProtocolError`, { cause: error });
          typedErrors++;
        }
      };
      const decoder = new FrameDecoder();
      check(() => {
        // Fed in two pieces: reassembly across reads is part of what is under test.
        const cut = Math.floor(rand() * frame.length);
        const packets = [...decoder.push(frame.subarray(0, cut)), ...decoder.push(frame.subarray(cut))];
        decoder.finish();
        for (const { header, payload } of packets) {
          decodedFrames++;
          // The frame's own procedure's codecs, the error record, and a few others picked at random.
          const own = REMOTE_PROCEDURES.get(header.procedure);
          const picked = [remoteError, ...(own ? [own.args, own.ret] : []), ...Array.from({ length: 4 }, () => CODECS[Math.floor(rand() * CODECS.length)]!)];
          for (const codec of picked) check(() => decode(codec, payload));
          if (header.type === MessageType.STREAM_HOLE) check(() => sparseStream().receiveHole(header.status, payload));
        }
      });
    }
    expect(decodedFrames).toBeGreaterThan(1000);
    expect(typedErrors).toBeGreaterThan(4000);
  });
});
