/**
 * A session's fairness (daemon/session.ts): at most `maxCallsInFlight` calls of one client run at once,
 * the rest wait in order, and a client that pipelines thousands of calls does not keep another client's
 * call waiting until all of them are served. The daemon runs in process with a program of test
 * procedures, and the clients write raw frames, so a flood arrives as one chunk.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type Daemon, startDaemon } from "../../daemon/daemon.ts";
import { type ServedProcedure, serve } from "../../daemon/dispatch.ts";
import { createSessionFactory, type ServedProgram } from "../../daemon/session.ts";
import { connect } from "../../mod.ts";
import { int, voidCodec } from "../../drivers/remote/rpc/codec.ts";
import { encodeMessage, FrameDecoder, MessageStatus, MessageType, REMOTE_PROGRAM } from "../../drivers/remote/rpc/packet.ts";
import { procedure } from "../../drivers/remote/rpc/protocol/common.ts";

const HOLD = procedure(9001, "TEST_HOLD", voidCodec, voidCodec);
const TICK = procedure(9002, "TEST_TICK", int, voidCodec);

function program(procs: readonly ServedProcedure[]): ServedProgram {
  return {
    program: REMOTE_PROGRAM,
    version: 1,
    procedures: new Map(procs.map((p) => [p.proc.number, p])),
    accessOf: () => "read",
    nameOf: (n) => `TEST_${n}`,
  };
}

/** A raw client: writes frames in one go, counts the replies by status. */
async function rawClient(path: string): Promise<{ socket: Socket; send(frames: Uint8Array[]): void; replies(n: number): Promise<number[]> }> {
  const socket = createConnection(path);
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  const decoder = new FrameDecoder();
  const statuses: number[] = [];
  let waiter: { n: number; resolve: () => void } | undefined;
  socket.on("data", (chunk: Uint8Array) => {
    for (const packet of decoder.push(chunk)) statuses.push(packet.header.status);
    if (waiter && statuses.length >= waiter.n) waiter.resolve();
  });
  return {
    socket,
    send(frames) {
      const bytes = new Uint8Array(frames.reduce((n, f) => n + f.byteLength, 0));
      let at = 0;
      for (const f of frames) (bytes.set(f, at), (at += f.byteLength));
      socket.write(bytes);
    },
    replies(n) {
      if (statuses.length >= n) return Promise.resolve(statuses);
      return new Promise((resolve) => (waiter = { n, resolve: () => resolve(statuses) }));
    },
  };
}

function calls<A>(proc: typeof HOLD | typeof TICK, count: number, args: A, firstSerial = 1): Uint8Array[] {
  return Array.from({ length: count }, (_, i) =>
    encodeMessage(
      { program: REMOTE_PROGRAM, version: 1, procedure: proc.number, type: MessageType.CALL, serial: firstSerial + i, status: MessageStatus.OK },
      proc.args as never,
      args as never,
    ));
}

describe("a session's fairness between clients", () => {
  let daemon: Daemon | undefined;
  let dir: string | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets) s.destroy();
    sockets.length = 0;
    await daemon?.stop();
    daemon = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function start(procs: readonly ServedProcedure[], maxCallsInFlight?: number): Promise<string> {
    dir = mkdtempSync(join(tmpdir(), "vk-fair-"));
    const path = join(dir, "s.sock");
    daemon = await startDaemon(
      { listen: [{ kind: "unix", path }], insecureTcp: false, allow: ["test:///default"], socketMode: 0o600 },
      { open: connect, log: () => {}, createSession: createSessionFactory({ programs: [program(procs)], maxCallsInFlight }) },
    );
    return path;
  }

  it("runs at most maxCallsInFlight calls of a client at once; the others wait and are all answered", async () => {
    let running = 0;
    let maxRunning = 0;
    let started = 0;
    const held: Array<() => void> = [];
    let onStart: (() => void) | undefined;
    const path = await start([
      serve(HOLD, () => {
        running++;
        started++;
        maxRunning = Math.max(maxRunning, running);
        onStart?.();
        return new Promise<void>((resolve) => held.push(() => (running--, resolve())));
      }, { beforeOpen: true }),
    ], 4);
    const client = await rawClient(path);
    sockets.push(client.socket);
    const fourStarted = new Promise<void>((resolve) => (onStart = () => started === 4 && resolve()));
    client.send(calls(HOLD, 20, undefined));
    await fourStarted;
    // The 20 calls came in one chunk: without the limit all of them would have started by now.
    expect(started).toBe(4);
    const all = client.replies(20);
    // Each batch released lets the next start, one loop turn later.
    while (started < 20) {
      const next = new Promise<void>((resolve) => (onStart = () => running === 4 || started === 20 ? resolve() : undefined));
      for (const release of held.splice(0)) release();
      await next;
    }
    for (const release of held.splice(0)) release();
    const statuses = await all;
    expect(statuses).toHaveLength(20);
    expect(statuses.every((s) => s === MessageStatus.OK)).toBe(true);
    expect(maxRunning).toBe(4);
  });

  it("serves another client's call while a client that pipelined 2000 calls is still being served", async () => {
    const order: number[] = [];
    let onTick: ((client: number) => void) | undefined;
    const path = await start([serve(TICK, (_ctx, client) => {
      order.push(client);
      onTick?.(client);
    }, { beforeOpen: true })]);
    const flooder = await rawClient(path);
    const other = await rawClient(path);
    sockets.push(flooder.socket, other.socket);
    // The other client sends its one call once the daemon serves the flood's first.
    const floodStarted = new Promise<void>((resolve) => (onTick = (client) => client === 1 && resolve()));
    flooder.send(calls(TICK, 2000, 1));
    await floodStarted;
    onTick = undefined;
    other.send(calls(TICK, 1, 2));
    expect(await other.replies(1)).toEqual([MessageStatus.OK]);
    expect((await flooder.replies(2000)).length).toBe(2000);
    const before = order.indexOf(2);
    // Served after a few turns of the flood (32 calls a turn), not after all of it.
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(500);
  });

  it("refuses the calls still waiting when the daemon stops, and finishes the one running", async () => {
    const held: Array<() => void> = [];
    let onStart: (() => void) | undefined;
    const path = await start([
      serve(HOLD, () => {
        onStart?.();
        return new Promise<void>((resolve) => held.push(resolve));
      }, { beforeOpen: true }),
    ], 1);
    const client = await rawClient(path);
    sockets.push(client.socket);
    const running = new Promise<void>((resolve) => (onStart = resolve));
    client.send(calls(HOLD, 3, undefined));
    await running;
    const refused = client.replies(2);
    const stopped = daemon!.stop();
    expect(await refused).toEqual([MessageStatus.ERROR, MessageStatus.ERROR]);
    held.splice(0).forEach((release) => release());
    const all = client.replies(3);
    await stopped;
    expect(await all).toEqual([MessageStatus.ERROR, MessageStatus.ERROR, MessageStatus.OK]);
    daemon = undefined;
  });
});
