import process from "node:process";
import { afterEach, describe, expect, it } from "vitest";
import { createVirtualClock } from "../../../../core/clock.ts";
import { ConnectError, QmpError, UnsupportedError, VirtError } from "../../../../core/errors.ts";
import { QmpClient, type QmpClientOptions } from "../../../../drivers/qemu/qmp/client.ts";
import { QmpDisconnectedError, QmpProtocolError } from "../../../../drivers/qemu/qmp/errors.ts";
import { createFakeQmpPeer, type FakeQmpPeer, type FakeQmpPeerOptions } from "../../../../drivers/qemu/qmp/testing/mod.ts";
import type { JsonObject, QmpEvent } from "../../../../drivers/qemu/qmp/types.ts";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function pair(peerOptions: FakeQmpPeerOptions = {}, clientOptions: QmpClientOptions = {}): Promise<{ peer: FakeQmpPeer; qmp: QmpClient }> {
  const peer = createFakeQmpPeer(peerOptions);
  const qmp = await QmpClient.connect(peer.transport, clientOptions);
  cleanups.push(async () => {
    await qmp.close();
    peer.hangUp();
  });
  return { peer, qmp };
}

const jsc = (id: string, status: string) => ({ event: "JOB_STATUS_CHANGE", data: { id, status } });

describe("QmpClient.connect()", () => {
  it("reads the greeting and negotiates capabilities before anything else", async () => {
    const { peer, qmp } = await pair();
    expect(qmp.greeting.QMP.version.qemu).toEqual({ major: 7, minor: 2, micro: 22 });
    expect(qmp.greeting.QMP.capabilities).toEqual(["oob"]);
    expect(peer.received.map((c) => c.execute)).toEqual(["qmp_capabilities"]);
    expect(peer.received[0]!.arguments).toBeUndefined();
    expect(typeof peer.received[0]!.id).toBe("number");
    peer.assertDone();
  });

  it("enables requested capabilities the server offers", async () => {
    const peer = createFakeQmpPeer({ autoCapabilities: false });
    peer.expect("qmp_capabilities", { return: {} }, { args: { enable: ["oob"] } });
    const qmp = await QmpClient.connect(peer.transport, { capabilities: ["oob"] });
    await qmp.close();
    await peer[Symbol.asyncDispose]();
  });

  it("rejects a capability the server does not offer, without sending anything", async () => {
    const peer = createFakeQmpPeer({ greeting: { QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: "" }, capabilities: [] } } });
    const error = await QmpClient.connect(peer.transport, { capabilities: ["oob"] }).catch((e) => e);
    expect(error).toBeInstanceOf(UnsupportedError);
    expect(peer.received).toEqual([]);
    await peer.clientClosed;
  });

  it("rejects with the QMP error when qmp_capabilities is refused", async () => {
    const peer = createFakeQmpPeer({ autoCapabilities: false });
    peer.expect("qmp_capabilities", { error: { class: "CommandNotFound", desc: "Capabilities negotiation is already complete, command ignored" } });
    const error = await QmpClient.connect(peer.transport).catch((e) => e);
    expect(error).toBeInstanceOf(QmpError);
    expect(error.errorClass).toBe("CommandNotFound");
    expect(error.command).toBe("qmp_capabilities");
    await peer.clientClosed;
  });

  it.each([
    { what: "a malformed greeting", raw: '{"QMP":{"version":{}}}\r\n' },
    { what: "an event instead of a greeting", raw: '{"event":"STOP","timestamp":{"seconds":1,"microseconds":2}}\r\n' },
    { what: "a line that is not JSON", raw: "Welcome to the monitor\r\n" },
  ])("rejects $what with QmpProtocolError and closes the transport", async ({ raw }) => {
    const peer = createFakeQmpPeer({ greeting: false });
    peer.sendRaw(raw);
    const error = await QmpClient.connect(peer.transport).catch((e) => e);
    expect(error).toBeInstanceOf(QmpProtocolError);
    expect(error).toBeInstanceOf(VirtError);
    await peer.clientClosed;
  });

  it("times out on the injected clock when no greeting comes", async () => {
    const clock = createVirtualClock();
    const peer = createFakeQmpPeer({ greeting: false });
    const connecting = QmpClient.connect(peer.transport, { clock, timeoutMs: 5000 }).catch((e) => e);
    await clock.advance(4999);
    expect(peer.received).toEqual([]);
    await clock.advance(1);
    const error = await connecting;
    expect(error).toBeInstanceOf(ConnectError);
    expect(error.message).toContain("5000 ms");
    await peer.clientClosed;
    expect(clock.pendingTimers).toBe(0);
  });

  it("rejects with the signal's own reason when aborted", async () => {
    const peer = createFakeQmpPeer({ greeting: false });
    const controller = new AbortController();
    const connecting = QmpClient.connect(peer.transport, { signal: controller.signal }).catch((e) => e);
    const reason = new Error("user gave up");
    controller.abort(reason);
    expect(await connecting).toBe(reason);
    await peer.clientClosed;
  });

  it("rejects with QmpDisconnectedError when the peer hangs up before the greeting", async () => {
    const peer = createFakeQmpPeer({ greeting: false });
    peer.hangUp();
    await expect(QmpClient.connect(peer.transport)).rejects.toBeInstanceOf(QmpDisconnectedError);
  });

  it("rejects bad arguments with TypeError / RangeError", async () => {
    await expect(QmpClient.connect({} as never)).rejects.toBeInstanceOf(TypeError);
    const peer = createFakeQmpPeer();
    await expect(QmpClient.connect(peer.transport, { timeoutMs: 0 })).rejects.toBeInstanceOf(RangeError);
    await expect(QmpClient.connect(peer.transport, { maxLineBytes: -1 })).rejects.toBeInstanceOf(RangeError);
  });
});

describe("QmpClient.execute()", () => {
  it("puts a distinct id on every command and routes out-of-order replies by id", async () => {
    const { peer, qmp } = await pair();
    peer.expect("query-version", { return: { which: "version" } }, { hold: true });
    peer.expect("query-target", { return: { which: "target" } }, { hold: true });
    peer.expect("query-status", { return: { which: "status" } }, { hold: true });
    const results = [qmp.execute("query-version"), qmp.execute("query-target"), qmp.execute("query-status")];
    await peer.whenReceived(4);
    peer.releaseHeld("reverse");
    expect(await Promise.all(results)).toEqual([{ which: "version" }, { which: "target" }, { which: "status" }]);
    const ids = peer.received.map((c) => c.id);
    expect(new Set(ids).size).toBe(4);
    peer.assertDone();
  });

  it("sends arguments and resolves with the return value", async () => {
    const { peer, qmp } = await pair();
    const args = { "job-id": "pull", device: "ov", speed: 67108864, "auto-finalize": false, "auto-dismiss": false };
    peer.expect("block-stream", { return: {} }, { args });
    expect(await qmp.execute("block-stream", args)).toEqual({});
    peer.assertDone();
  });

  it("keeps the QMP error class, description and command", async () => {
    const { peer, qmp } = await pair();
    peer.expect("block-job-set-speed", { error: { class: "DeviceNotActive", desc: "Block job 'nojob' not found" } });
    const error = await qmp.execute("block-job-set-speed", { device: "nojob", speed: 1 }).catch((e) => e);
    expect(error).toBeInstanceOf(QmpError);
    expect(error).toBeInstanceOf(VirtError);
    expect(error.code).toBe("qmp-error");
    expect(error.errorClass).toBe("DeviceNotActive");
    expect(error.desc).toBe("Block job 'nojob' not found");
    expect(error.command).toBe("block-job-set-speed");
    expect(error.message).toBe(`QMP command "block-job-set-speed" failed: Block job 'nojob' not found`);
    peer.assertDone();
  });

  it("settles the oldest command with a reply that has no id (QEMU's answer to input it cannot parse)", async () => {
    const { peer, qmp } = await pair();
    peer.expect("query-jobs", { return: [] }, { hold: true });
    const pending = qmp.execute("query-jobs").catch((e) => e);
    await peer.whenReceived(2);
    peer.sendRaw('{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword \'garbage\'"}}\r\n');
    const error = await pending;
    expect(error).toBeInstanceOf(QmpError);
    expect(error.errorClass).toBe("GenericError");
    expect(qmp.isClosed).toBe(false);
    peer.hangUp();
  });

  it("rejects with the signal's reason, drops the late reply and keeps working", async () => {
    const { peer, qmp } = await pair();
    peer.expect("query-jobs", { return: ["late"] }, { hold: true });
    peer.expect("query-target", { return: { arch: "x86_64" } });
    const controller = new AbortController();
    const pending = qmp.execute("query-jobs", undefined, { signal: controller.signal }).catch((e) => e);
    await peer.whenReceived(2);
    const reason = new DOMException("stop", "AbortError");
    controller.abort(reason);
    expect(await pending).toBe(reason);
    peer.releaseHeld();
    expect(await qmp.execute("query-target")).toEqual({ arch: "x86_64" });
    expect(qmp.isClosed).toBe(false);
    peer.assertDone();
  });

  it("rejects at once with an already aborted signal, sending nothing", async () => {
    const { peer, qmp } = await pair();
    const reason = new Error("already");
    await expect(qmp.execute("query-jobs", undefined, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(peer.received.length).toBe(1);
  });

  it("rejects bad arguments with TypeError", async () => {
    const { qmp } = await pair();
    await expect(qmp.execute("")).rejects.toBeInstanceOf(TypeError);
    await expect(qmp.execute("x", [] as never)).rejects.toBeInstanceOf(TypeError);
    await expect(qmp.execute(42 as never)).rejects.toBeInstanceOf(TypeError);
  });

  it("copes with every line split byte by byte, the greeting included", async () => {
    const { peer, qmp } = await pair({ fragmentBytes: 1 });
    const seen: string[] = [];
    qmp.on("*", (e) => seen.push(`${e.event}:${String(e.data.status)}`));
    peer.expect("block-stream", { return: {} }, { emitBefore: [jsc("s1", "created"), jsc("s1", "running")], thenEmit: [jsc("s1", "paused")] });
    const paused = qmp.waitFor("JOB_STATUS_CHANGE", { status: "paused" });
    expect(await qmp.execute("block-stream", { "job-id": "s1", device: "ov" })).toEqual({});
    await paused;
    expect(seen).toEqual(["JOB_STATUS_CHANGE:created", "JOB_STATUS_CHANGE:running", "JOB_STATUS_CHANGE:paused"]);
    peer.assertDone();
  });

  it("takes a 200 KiB reply arriving in 64 KiB pieces", async () => {
    const { peer, qmp } = await pair();
    const nodes = Array.from({ length: 1600 }, (_, i) => ({ "node-name": `node${i}`, drv: "qcow2", file: `/var/lib/images/${"x".repeat(80)}-${i}.qcow2` }));
    peer.expect("query-named-block-nodes", { return: nodes });
    peer.fragment(65536);
    const result = await qmp.execute<typeof nodes>("query-named-block-nodes");
    expect(JSON.stringify(nodes).length).toBeGreaterThan(200 * 1024);
    expect(result).toEqual(nodes);
  });

  it("handles many messages in one chunk", async () => {
    const { peer, qmp } = await pair();
    peer.expect("query-jobs", { return: [] }, { hold: true });
    const seen: QmpEvent[] = [];
    qmp.on("*", (e) => seen.push(e));
    const pending = qmp.execute("query-jobs");
    await peer.whenReceived(2);
    const id = peer.received[1]!.id;
    peer.sendRaw(
      `{"event":"A","data":{},"timestamp":{"seconds":1,"microseconds":0}}\r\n{"return":[1],"id":${id}}\r\n` +
        `{"event":"B","timestamp":{"seconds":2,"microseconds":0}}\r\n`,
    );
    expect(await pending).toEqual([1]);
    // One chunk is handled in one go, so B was delivered before the reply's continuation ran.
    expect(seen.map((e) => e.event)).toEqual(["A", "B"]);
    expect(seen[1]!.data).toEqual({});
    peer.hangUp();
  });
});

describe("QmpClient events", () => {
  it("delivers events that come before and after a command, in order", async () => {
    const { peer, qmp } = await pair();
    const seen: string[] = [];
    qmp.on("*", (e) => seen.push(e.event));
    peer.emit({ event: "RESUME" });
    peer.expect("stop", { return: {} }, { thenEmit: [{ event: "STOP" }] });
    const stopped = qmp.waitFor("STOP");
    await qmp.execute("stop");
    await stopped;
    expect(seen).toEqual(["RESUME", "STOP"]);
    peer.assertDone();
  });

  it("resolves a waitFor registered before the command whose events come before its reply", async () => {
    const { peer, qmp } = await pair();
    peer.emit(jsc("old", "running"));
    const running = qmp.waitFor("JOB_STATUS_CHANGE", { id: "pull", status: "running" });
    let replied = false;
    let eventFirst = false;
    void running.then(() => (eventFirst = !replied));
    peer.expect("block-stream", { return: {} }, { emitBefore: [jsc("pull", "created"), jsc("pull", "running")] });
    await qmp.execute("block-stream", { "job-id": "pull", device: "ov" });
    replied = true;
    expect((await running).data).toEqual({ id: "pull", status: "running" });
    expect(eventFirst).toBe(true);
  });

  it("filters with a predicate or a data subset, and stops after unsubscribe", async () => {
    const { peer, qmp } = await pair();
    const byObject: JsonObject[] = [];
    const byPredicate: JsonObject[] = [];
    const off = qmp.on("JOB_STATUS_CHANGE", (e) => byObject.push(e.data), { id: "a" });
    qmp.on("JOB_STATUS_CHANGE", (e) => byPredicate.push(e.data), (e) => e.data.status === "pending");
    for (const [id, status] of [["a", "running"], ["b", "pending"], ["a", "pending"]] as const) peer.emit(jsc(id, status));
    await qmp.waitFor("JOB_STATUS_CHANGE", { id: "a", status: "pending" });
    off();
    peer.emit(jsc("a", "concluded"));
    await qmp.waitFor("JOB_STATUS_CHANGE", { status: "concluded" });
    expect(byObject).toEqual([{ id: "a", status: "running" }, { id: "a", status: "pending" }]);
    expect(byPredicate).toEqual([{ id: "b", status: "pending" }, { id: "a", status: "pending" }]);
  });

  it("keeps delivering when a listener throws, and reports the error", async () => {
    const reported: unknown[] = [];
    const { peer, qmp } = await pair({}, { onListenerError: (error) => reported.push(error) });
    const boom = new Error("listener bug");
    qmp.on("STOP", () => {
      throw boom;
    });
    const stopped = qmp.waitFor("STOP");
    peer.emit({ event: "STOP" });
    expect((await stopped).event).toBe("STOP");
    expect(reported).toEqual([boom]);
  });

  it("waitFor times out on the client's clock with a TimeoutError", async () => {
    const clock = createVirtualClock();
    const { qmp } = await pair({}, { clock });
    const waiting = qmp.waitFor("BLOCK_JOB_COMPLETED", undefined, { timeoutMs: 1000 }).catch((e) => e);
    await clock.advance(1000);
    const error = await waiting;
    expect(error).toBeInstanceOf(DOMException);
    expect(error.name).toBe("TimeoutError");
    expect(clock.pendingTimers).toBe(0);
  });

  it("waitFor rejects with the signal's reason", async () => {
    const { qmp } = await pair();
    const controller = new AbortController();
    const waiting = qmp.waitFor("STOP", undefined, { signal: controller.signal });
    controller.abort("enough");
    await expect(waiting).rejects.toBe("enough");
    await expect(qmp.waitFor("STOP", undefined, { signal: controller.signal })).rejects.toBe("enough");
  });

  it("rejects bad listener arguments with TypeError / RangeError", async () => {
    const { qmp } = await pair();
    expect(() => qmp.on("", () => {})).toThrow(TypeError);
    expect(() => qmp.on("STOP", "nope" as never)).toThrow(TypeError);
    expect(() => qmp.on("STOP", () => {}, 5 as never)).toThrow(TypeError);
    expect(() => qmp.waitFor("STOP", undefined, { timeoutMs: -5 })).toThrow(RangeError);
  });
});

describe("QmpClient when the connection ends", () => {
  it("fails every pending command and waiter with QmpDisconnectedError on hang-up, with no unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const { peer, qmp } = await pair();
      for (const name of ["query-jobs", "query-block", "query-status"]) peer.expect(name, { return: [] }, { hold: true });
      const pending = ["query-jobs", "query-block", "query-status"].map((name) => qmp.execute(name).catch((e) => e));
      const waiting = qmp.waitFor("BLOCK_JOB_COMPLETED").catch((e) => e);
      await peer.whenReceived(4);
      peer.hangUp();
      const errors = await Promise.all(pending);
      for (const [i, error] of errors.entries()) {
        expect(error).toBeInstanceOf(QmpDisconnectedError);
        expect(error.code).toBe("connect-failed");
        expect(error.command).toBe(["query-jobs", "query-block", "query-status"][i]);
      }
      expect(await waiting).toBeInstanceOf(QmpDisconnectedError);
      await expect(qmp.closed).rejects.toBeInstanceOf(QmpDisconnectedError);
      expect(qmp.isClosed).toBe(true);
      await expect(qmp.execute("query-jobs")).rejects.toBeInstanceOf(QmpDisconnectedError);
      await expect(qmp.waitFor("STOP")).rejects.toBeInstanceOf(QmpDisconnectedError);
      await new Promise((resolve) => setTimeout(resolve, 0));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("closes with QmpProtocolError on a garbage line and fails the pending commands", async () => {
    const { peer, qmp } = await pair();
    peer.expect("query-jobs", { return: [] }, { hold: true });
    const pending = qmp.execute("query-jobs").catch((e) => e);
    await peer.whenReceived(2);
    peer.sendRaw("\u0000\u0001 not json at all\r\n");
    const error = await pending;
    expect(error).toBeInstanceOf(QmpDisconnectedError);
    expect(error.cause).toBeInstanceOf(QmpProtocolError);
    const reason = await qmp.closed.catch((e) => e);
    expect(reason).toBeInstanceOf(QmpProtocolError);
    expect(reason.line).toContain("not json at all");
    await peer.clientClosed;
  });

  it.each([
    { what: "a JSON array", line: "[1,2]\r\n" },
    { what: "an object that is neither reply nor event", line: '{"hello":1}\r\n' },
    { what: "an error reply without class", line: '{"error":"bad","id":2}\r\n' },
    { what: "a reply to an unknown id", line: '{"return":{},"id":999}\r\n' },
    { what: "a second greeting", line: '{"QMP":{"version":{"qemu":{"major":7,"minor":2,"micro":0},"package":""},"capabilities":[]}}\r\n' },
    { what: "invalid UTF-8", line: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d, 0x0a]) },
  ])("closes with QmpProtocolError on $what", async ({ line }) => {
    const { peer, qmp } = await pair();
    peer.sendRaw(line);
    await expect(qmp.closed).rejects.toBeInstanceOf(QmpProtocolError);
    await peer.clientClosed;
  });

  it("closes with QmpProtocolError as soon as one line passes the limit, before it ends", async () => {
    const { peer, qmp } = await pair({}, { maxLineBytes: 1024 });
    peer.expect("query-jobs", { return: [] }, { hold: true });
    const pending = qmp.execute("query-jobs").catch((e) => e);
    await peer.whenReceived(2);
    peer.sendRaw(`{"return": "${"x".repeat(1100)}`);
    const reason = await qmp.closed.catch((e) => e);
    expect(reason).toBeInstanceOf(QmpProtocolError);
    expect(reason.message).toContain("1024 bytes");
    expect((await pending).cause).toBe(reason);
  });

  it("close() fails pending commands, resolves closed and releases the transport", async () => {
    const { peer, qmp } = await pair();
    peer.expect("query-jobs", { return: [] }, { hold: true });
    const pending = qmp.execute("query-jobs").catch((e) => e);
    await peer.whenReceived(2);
    await qmp.close();
    const error = await pending;
    expect(error).toBeInstanceOf(QmpDisconnectedError);
    expect(error.message).toBe('QMP command "query-jobs" was lost: the client closed the connection');
    await qmp.closed;
    await peer.clientClosed;
    await qmp.close();
  });

  it("treats a hang-up after a successful quit as a clean close", async () => {
    const { peer, qmp } = await pair();
    peer.expect("quit", { return: {} }, { thenEmit: [{ event: "SHUTDOWN", data: { guest: false, reason: "host-qmp-quit" } }], thenHangUp: true });
    const shutdown = qmp.waitFor("SHUTDOWN");
    await qmp.execute("quit");
    await shutdown;
    await qmp.closed;
    peer.assertDone();
  });
});

describe("QmpClient.execute() arguments", () => {
  it("accepts a typed interface and leaves out undefined members", async () => {
    interface BlockStreamArgs {
      "job-id": string;
      device: string;
      speed?: number;
    }
    const { peer, qmp } = await pair();
    peer.expect("block-stream", { return: {} }, { args: { "job-id": "j", device: "ov" } });
    const args: BlockStreamArgs = { "job-id": "j", device: "ov", speed: undefined };
    await qmp.execute("block-stream", args);
    peer.assertDone();
  });
});
