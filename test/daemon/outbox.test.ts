import { createServer, createConnection, type Socket } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createOutbox } from "../../daemon/outbox.ts";

describe("createOutbox", () => {
  it("cuts off a real client that stops reading once its backlog passes the limit", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vk-outbox-"));
    const path = join(dir, "s.sock");
    const accepted = new Promise<Socket>((resolve) => {
      const server = createServer((s) => {
        server.close();
        resolve(s);
      });
      server.listen(path);
    });
    const reader = createConnection(path);
    reader.pause(); // a client that stops reading
    const socket = await accepted;
    const overflows: number[] = [];
    const outbox = createOutbox(socket, { maxBacklogBytes: 4 * 1024 * 1024, onOverflow: (n) => overflows.push(n) });
    let sent = 0;
    const frame = new Uint8Array(64 * 1024);
    while (outbox.send(frame)) sent++;
    expect(outbox.overflowed).toBe(true);
    expect(overflows).toHaveLength(1);
    expect(overflows[0]!).toBeLessThanOrEqual(4 * 1024 * 1024);
    // The kernel buffers some of it, so more than the limit was accepted, but not without bound.
    expect(sent * frame.byteLength).toBeLessThan(64 * 1024 * 1024);
    expect(outbox.send(frame)).toBe(false);
    await expect(outbox.whenWritable()).rejects.toThrow(/gone/);
    reader.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lets a producer wait for room instead of overflowing", async () => {
    let queued = 0;
    const listeners = new Map<string, () => void>();
    const socket = {
      get writableLength() { return queued; },
      writable: true,
      write(chunk: Uint8Array) { queued += chunk.byteLength; return false; },
      destroy() {},
      once(event: "drain" | "close", listener: () => void) { listeners.set(event, listener); },
      off(event: "drain" | "close") { listeners.delete(event); },
    };
    const outbox = createOutbox(socket, { maxBacklogBytes: 1000, lowWaterBytes: 100 });
    expect(outbox.send(new Uint8Array(500))).toBe(true);
    let resumed = false;
    const waiting = outbox.whenWritable().then(() => (resumed = true));
    await Promise.resolve();
    expect(resumed).toBe(false);
    queued = 0;
    const drain = listeners.get("drain")!;
    listeners.delete("drain"); // what a real once() does as it fires
    drain();
    await waiting;
    expect(resumed).toBe(true);
    expect(listeners.size).toBe(0);
  });

  it("writes a lone frame at once and sends a burst of one tick in one uncork", async () => {
    const log: string[] = [];
    const socket = {
      writableLength: 0,
      writable: true,
      write(chunk: Uint8Array) { log.push(`write ${chunk.byteLength}`); return true; },
      destroy() {},
      once() {},
      off() {},
      cork() { log.push("cork"); },
      uncork() { log.push("uncork"); },
    };
    const outbox = createOutbox(socket);
    outbox.send(new Uint8Array(1));
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(log).toEqual(["write 1"]);
    log.length = 0;
    outbox.send(new Uint8Array(2));
    await Promise.resolve();
    outbox.send(new Uint8Array(3)); // a reply finished by a promise job of the same tick
    outbox.send(new Uint8Array(4));
    expect(log).toEqual(["write 2", "cork", "write 3", "write 4"]);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(log).toEqual(["write 2", "cork", "write 3", "write 4", "uncork"]);
  });
});
