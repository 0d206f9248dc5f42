/**
 * The RPC client against a scripted fake peer: replies matched by serial with many calls in flight,
 * events, keepalive both ways, and every error path: an error reply, an oversized length, a truncated
 * frame, a wrong serial, bad XDR padding, a peer that hangs up, and one that stops answering. Each
 * gives a typed error, rejects what is pending, and hangs nothing.
 */
import { afterEach, describe, expect, it } from "vitest";
import { ConnectError, NotFoundError, StateError, UnsupportedError } from "../../../../core/errors.ts";
import { encode } from "../../../../drivers/remote/rpc/codec.ts";
import { libvirtErrorOf } from "../../../../drivers/remote/rpc/errors.ts";
import { KEEPALIVE_PROGRAM, MessageStatus, MessageType, REMOTE_PROGRAM } from "../../../../drivers/remote/rpc/packet.ts";
import { CONNECT_GET_URI, CONNECT_SUPPORTS_FEATURE } from "../../../../drivers/remote/rpc/protocol/connect.ts";
import { DOMAIN_LOOKUP_BY_NAME } from "../../../../drivers/remote/rpc/protocol/domain.ts";
import { DOMAIN_EVENT_BLOCK_JOB_2 } from "../../../../drivers/remote/rpc/protocol/events.ts";
import { ProtocolError } from "../../../../drivers/remote/rpc/protocol_error.ts";
import { type FakeServer, startFakeServer } from "../_fake_server.ts";

const UUID = "11111111-2222-3333-4444-555555555555";
let server: FakeServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A peer that sends a BLOCK_JOB_2 event before each answer (as libvirtd's events overtake replies). */
const eventThenAnswer: Parameters<typeof startFakeServer>[0] = (p, reply) => {
  reply.send({ program: REMOTE_PROGRAM, version: 1, procedure: 339, type: MessageType.MESSAGE, serial: 1, status: 0 },
    encode(DOMAIN_EVENT_BLOCK_JOB_2.args, { callbackID: 7, dom: { name: "vm", uuid: UUID, id: 1 }, dst: "vda", type: 1, status: 0 }));
  reply.ok(p, encode(CONNECT_SUPPORTS_FEATURE.ret, 1));
};

/** The 4-byte big-endian word. */
const word = (n: number) => new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);

describe("RpcClient against a fake peer", () => {
  it("matches out-of-order replies to 50 calls in flight by serial", async () => {
    const held: Array<() => void> = [];
    server = await startFakeServer((p, reply) => {
      const name = new TextDecoder().decode(p.payload.subarray(4, 4 + p.payload[3]!));
      held.push(() => reply.ok(p, encode(DOMAIN_LOOKUP_BY_NAME.ret, { name, uuid: UUID, id: p.header.serial })));
      if (held.length === 50) for (const send of held.reverse()) send();
    });
    const client = await server.client();
    const names = Array.from({ length: 50 }, (_, i) => `vm${i}`);
    const replies = await Promise.all(names.map((n) => client.call(DOMAIN_LOOKUP_BY_NAME, n)));
    expect(replies.map((r) => r.name)).toEqual(names);
    expect(new Set(replies.map((r) => r.id)).size).toBe(50);
    expect(client.pendingCalls).toBe(0);
  });

  it("maps error replies onto the error tree, keeping libvirt's code, domain and message", async () => {
    const codes = [42, 3, 55];
    server = await startFakeServer((p, reply) => reply.error(p, codes[p.header.serial]!, `libvirt says ${p.header.serial}`));
    const client = await server.client();
    const notFound = await client.call(DOMAIN_LOOKUP_BY_NAME, "ghost", { objectName: "ghost" }).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(NotFoundError);
    expect((notFound as NotFoundError).objectName).toBe("ghost");
    expect(libvirtErrorOf(notFound)).toEqual({ code: 42, domain: 10, message: "libvirt says 0", level: 2 });
    await expect(client.call(DOMAIN_LOOKUP_BY_NAME, "x", { operation: "look up" })).rejects.toBeInstanceOf(UnsupportedError);
    await expect(client.call(DOMAIN_LOOKUP_BY_NAME, "x")).rejects.toBeInstanceOf(StateError);
    expect(client.closed).toBe(false); // an error reply is an answer, not a broken connection
  });

  it("delivers event messages to listeners of their procedure", async () => {
    server = await startFakeServer(eventThenAnswer);
    const client = await server.client();
    const got = new Promise((resolve) => client.onMessage(DOMAIN_EVENT_BLOCK_JOB_2, resolve));
    await client.call(CONNECT_SUPPORTS_FEATURE, 14);
    expect(await got).toMatchObject({ callbackID: 7, dst: "vda", status: 0 });
  });

  it("a listener that throws is reported and the connection and the other listeners go on", async () => {
    server = await startFakeServer(eventThenAnswer);
    const client = await server.client();
    const reported: unknown[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void reported.push(args);
    try {
      client.onMessage(DOMAIN_EVENT_BLOCK_JOB_2, () => {
        throw new Error("a listener's own bug");
      });
      const got = new Promise((resolve) => client.onMessage(DOMAIN_EVENT_BLOCK_JOB_2, resolve));
      await client.call(CONNECT_SUPPORTS_FEATURE, 14);
      expect(await got).toMatchObject({ dst: "vda" });
      expect(await client.call(CONNECT_SUPPORTS_FEATURE, 14)).toBe(1);
      expect(client.closed).toBe(false);
      expect(String(reported[0])).toMatch(/listener of .* threw/);
    } finally {
      console.error = original;
    }
  });

  it("answers a keepalive PING with a PONG", async () => {
    let pong: (value: unknown) => void;
    const ponged = new Promise((resolve) => (pong = resolve));
    server = await startFakeServer((p, reply) => {
      if (p.header.program === KEEPALIVE_PROGRAM) return pong(p.header);
      reply.send({ program: KEEPALIVE_PROGRAM, version: 1, procedure: 1, type: MessageType.MESSAGE, serial: 0, status: 0 });
    });
    const client = await server.client();
    void client.call(CONNECT_SUPPORTS_FEATURE, 10).catch(() => {});
    expect(await ponged).toMatchObject({ program: KEEPALIVE_PROGRAM, procedure: 2, type: MessageType.MESSAGE, serial: 0 });
  });

  const broken: Array<[string, (p: import("../../../../drivers/remote/rpc/packet.ts").Packet, r: import("../_fake_server.ts").FakeReply) => void, RegExp]> = [
    ["an oversized length word", (_p, r) => r.sendRaw(word(16 * 1024 * 1024 + 100)), /exceeds the limit/],
    ["a length word below the header", (_p, r) => r.sendRaw(word(12)), /below the 28-byte minimum/],
    ["a reply with a wrong serial", (p, r) => r.send({ ...p.header, type: MessageType.REPLY, serial: 999 }), /no call is waiting/],
    ["a reply for another procedure", (p, r) => r.send({ ...p.header, type: MessageType.REPLY, procedure: 1 }), /the call was 110/],
    ["bad XDR padding", (p, r) => r.ok(p, new Uint8Array([0, 0, 0, 1, 0x61, 9, 9, 9])), /padding/],
    ["a reply too short for its shape", (p, r) => r.ok(p, new Uint8Array([0, 0])), /needs 4 bytes/],
    ["an unknown message type", (p, r) => r.send({ ...p.header, type: 9 }), /type 9/],
    ["an unknown program", (p, r) => r.send({ ...p.header, type: MessageType.REPLY, program: 0x1234 }), /unknown program/],
  ];
  for (const [what, answer, message] of broken) {
    it(`closes the connection on ${what} and rejects every pending call with ConnectError`, async () => {
      server = await startFakeServer((p, reply) => {
        if (p.header.serial === 0) answer(p, reply);
      });
      const client = await server.client();
      const first = client.call(CONNECT_GET_URI, undefined);
      const second = client.call(CONNECT_SUPPORTS_FEATURE, 14);
      const [a, b] = await Promise.allSettled([first, second]);
      expect(a.status).toBe("rejected");
      const error = (a as PromiseRejectedResult).reason;
      expect(error).toBeInstanceOf(ProtocolError);
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as Error).message).toMatch(message);
      expect((b as PromiseRejectedResult).reason).toBe(error);
      expect(client.closed).toBe(true);
      await expect(client.call(CONNECT_SUPPORTS_FEATURE, 9)).rejects.toBeInstanceOf(ConnectError);
    });
  }

  it("rejects pending calls when the peer hangs up mid-frame", async () => {
    server = await startFakeServer((p, reply) => {
      reply.sendRaw(new Uint8Array([0, 0, 0, 40, 0x20, 0, 0x80]));
      setImmediate(() => reply.hangUp());
      void p;
    });
    const client = await server.client();
    const error = await client.call(CONNECT_SUPPORTS_FEATURE, 10).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toMatch(/closed/);
  });

  it("declares a silent peer dead after the keepalive count and rejects its calls", async () => {
    server = await startFakeServer(() => {}); // reads everything, answers nothing, not even PINGs
    const client = await server.client({ keepaliveIntervalMs: 20, keepaliveCount: 2 });
    const error = await client.call(CONNECT_SUPPORTS_FEATURE, 10).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toMatch(/no answer to 2 keepalive pings/);
    expect(server.received.filter((p) => p.header.program === KEEPALIVE_PROGRAM && p.header.procedure === 1).length).toBe(2);
  });

  it("keeps a peer that answers its PINGs: each answer resets the count", async () => {
    let pings = 0;
    let enough!: () => void;
    const fivePings = new Promise<void>((resolve) => (enough = resolve));
    server = await startFakeServer((p, reply) => {
      if (p.header.program !== KEEPALIVE_PROGRAM || p.header.procedure !== 1) return;
      reply.send({ ...p.header, procedure: 2 }); // PONG
      if (++pings === 5) enough();
    });
    const client = await server.client({ keepaliveIntervalMs: 10, keepaliveCount: 2 });
    client.onClose(() => enough()); // a client declaring the peer dead ends the wait at once
    await fivePings;
    // Five PINGs answered: without the answers resetting the count, the second would have been its last.
    expect(client.closed).toBe(false);
    client.close();
  });

  it("drops the late reply of an aborted call without breaking the connection", async () => {
    const held: Array<() => void> = [];
    server = await startFakeServer((p, reply) => {
      const answer = () => reply.ok(p, encode(CONNECT_SUPPORTS_FEATURE.ret, p.header.serial));
      if (p.header.serial === 0) held.push(answer);
      else {
        held.shift()?.();
        answer();
      }
    });
    const client = await server.client();
    const controller = new AbortController();
    const aborted = client.call(CONNECT_SUPPORTS_FEATURE, 10, { signal: controller.signal });
    controller.abort(new Error("gave up"));
    await expect(aborted).rejects.toThrow("gave up");
    expect(await client.call(CONNECT_SUPPORTS_FEATURE, 14)).toBe(1);
    expect(client.closed).toBe(false);
    void MessageStatus;
  });
});
