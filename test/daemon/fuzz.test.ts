/**
 * Fuzzing virtkitd with mutated frames captured from real virsh runs: a recording proxy sits between
 * virsh and the daemon, the client-to-daemon frames it saw are mutated (bit flips, truncation, random
 * tails, wrong length words, headers, procedures), and thousands of them are sent on fresh connections,
 * each after a real handshake. The daemon must stay up and serve a clean client afterwards.
 */
import { createConnection, createServer, type Server } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FrameDecoder } from "../../drivers/remote/rpc/packet.ts";
import { rawExchange } from "./_support/raw_client.ts";
import { skipDaemon, startVirtkitd, type VirtkitdProcess, virsh } from "./_support/virtkitd.ts";

/** A small seeded PRNG (mulberry32), so a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Records the frames every client sends through it to `target`. */
function recordingProxy(path: string, target: string, frames: Uint8Array[]): Promise<Server> {
  const server = createServer((client) => {
    const upstream = createConnection(target);
    const decoder = new FrameDecoder();
    client.on("data", (chunk: Uint8Array) => {
      for (const packet of decoder.push(chunk)) {
        const frame = new Uint8Array(28 + packet.payload.byteLength);
        const view = new DataView(frame.buffer);
        const h = packet.header;
        [frame.byteLength, h.program, h.version, h.procedure, h.type, h.serial, h.status].forEach((v, i) => view.setUint32(i * 4, v >>> 0));
        frame.set(packet.payload, 28);
        frames.push(frame);
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk) => client.write(chunk));
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.on("error", () => {});
    upstream.on("error", () => {});
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}

function mutate(frame: Uint8Array, random: () => number): Uint8Array {
  const out = frame.slice();
  const view = new DataView(out.buffer);
  const pick = Math.floor(random() * 7);
  const at = (n: number) => Math.floor(random() * n);
  switch (pick) {
    case 0: // flip a few bytes anywhere past the length word
      for (let i = 0; i < 1 + at(4); i++) out[4 + at(out.byteLength - 4)] ^= 1 << at(8);
      return out;
    case 1: { // truncate the payload, keeping the length word honest
      const cut = out.subarray(0, 28 + at(out.byteLength - 27));
      new DataView(cut.buffer, cut.byteOffset).setUint32(0, cut.byteLength);
      return cut;
    }
    case 2: { // a random tail
      const tail = new Uint8Array(1 + at(64)).map(() => at(256));
      const grown = new Uint8Array(out.byteLength + tail.byteLength);
      grown.set(out);
      grown.set(tail, out.byteLength);
      new DataView(grown.buffer).setUint32(0, grown.byteLength);
      return grown;
    }
    case 3: // a lying length word
      view.setUint32(0, [0, 3, 27, out.byteLength + 1 + at(100), 0x1000001, 0xffffffff][at(6)]!);
      return out;
    case 4: // another procedure (often one that is not served)
      view.setInt32(12, [at(450), -1, 0x7fffffff, at(20)][at(4)]!);
      return out;
    case 5: // another type or status
      view.setUint32([16, 20, 24][at(3)]!, at(8));
      return out;
    default: // random words in the payload
      for (let i = 28; i + 4 <= out.byteLength; i += 4) if (random() < 0.2) view.setUint32(i, Math.floor(random() * 2 ** 32));
      return out;
  }
}

describe.skipIf(skipDaemon)("virtkitd under fuzzed input", () => {
  let daemon: VirtkitdProcess;
  let proxy: Server | undefined;
  beforeAll(async () => {
    daemon = await startVirtkitd();
  });
  afterAll(async () => {
    proxy?.close();
    await daemon?.stop();
  });

  it("survives thousands of mutated virsh frames, and every other client keeps working", async () => {
    const frames: Uint8Array[] = [];
    const proxyPath = join(daemon.dir, "proxy.sock");
    proxy = await recordingProxy(proxyPath, daemon.socket, frames);
    const via = `test+unix:///default?socket=${proxyPath}`;
    for (const args of [["list", "--all"], ["dominfo", "test"], ["dumpxml", "test"], ["blockjob", "test", "vda", "--info"], ["pool-list", "--all"], ["vol-list", "default-pool"], ["vol-info", "--pool", "default-pool", "test.qcow2"], ["domblklist", "test"]]) {
      expect((await virsh(via, args)).code).toBe(0);
    }
    expect(frames.length).toBeGreaterThan(50);
    // The handshake frames (AUTH_LIST, feature probes, CONNECT_OPEN) open each fuzzing connection, so
    // the mutations reach the procedures behind the open.
    const open = frames.findIndex((f) => new DataView(f.buffer).getInt32(12) === 1);
    const handshake = frames.slice(0, open + 1);
    const random = prng(20261201);
    const total = 3000;
    const perConnection = 10;
    let closedByDaemon = 0;
    for (let sent = 0; sent < total; sent += perConnection) {
      const batch = [...handshake];
      for (let i = 0; i < perConnection; i++) batch.push(mutate(frames[Math.floor(random() * frames.length)]!, random));
      const bytes = new Uint8Array(batch.reduce((n, f) => n + f.byteLength, 0));
      let at = 0;
      for (const f of batch) {
        bytes.set(f, at);
        at += f.byteLength;
      }
      const { closedByDaemon: closed } = await rawExchange(daemon.socket, bytes, 50);
      if (closed) closedByDaemon++;
      // The daemon process is still there after every batch.
      expect(() => process.kill(daemon.pid, 0)).not.toThrow();
    }
    // Some batches broke framing (and were cut off), others only got error replies.
    expect(closedByDaemon).toBeGreaterThan(0);
    expect(closedByDaemon).toBeLessThan(total / perConnection);
    const after = await virsh(daemon.uri(), ["list", "--all"]);
    expect(after.code).toBe(0);
    expect(after.stdout).toMatch(/test/);
  }, 300_000);
});
