import { afterEach, describe, expect, it } from "vitest";
import { QmpError } from "../../../../core/errors.ts";
import { QmpClient } from "../../../../drivers/qemu/qmp/client.ts";
import { createFakeQmpPeer, type FakeQmpPeer, QEMU_7_2_GREETING } from "../../../../drivers/qemu/qmp/testing/mod.ts";

const open: QmpClient[] = [];
afterEach(async () => {
  for (const qmp of open.splice(0)) await qmp.close();
});

async function connect(peer: FakeQmpPeer): Promise<QmpClient> {
  const qmp = await QmpClient.connect(peer.transport);
  open.push(qmp);
  return qmp;
}

describe("createFakeQmpPeer()", () => {
  it("sends QEMU 7.2's greeting by default", async () => {
    const qmp = await connect(createFakeQmpPeer());
    expect(qmp.greeting).toEqual(QEMU_7_2_GREETING);
  });

  it("answers an unexpected command with UnexpectedCommand and fails assertDone()", async () => {
    const peer = createFakeQmpPeer();
    const qmp = await connect(peer);
    const error = await qmp.execute("query-jobs").catch((e) => e);
    expect(error).toBeInstanceOf(QmpError);
    expect(error.errorClass).toBe("UnexpectedCommand");
    expect(peer.failures).toHaveLength(1);
    expect(() => peer.assertDone()).toThrow(/Unexpected command "query-jobs": no command was expected/);
  });

  it("keeps the order strict: a command out of turn is refused and the expectation stays", async () => {
    const peer = createFakeQmpPeer();
    peer.expect("job-pause", { return: {} });
    peer.expect("job-resume", { return: {} });
    const qmp = await connect(peer);
    const error = await qmp.execute("job-resume", { id: "j" }).catch((e) => e);
    expect(error.errorClass).toBe("UnexpectedCommand");
    expect(peer.remaining).toBe(2);
    expect(() => peer.assertDone()).toThrow(/expected "job-pause"/);
  });

  it("checks arguments exactly, or with a predicate", async () => {
    const peer = createFakeQmpPeer();
    peer.expect("block-job-set-speed", { return: {} }, { args: { device: "j", speed: 1024 } });
    peer.expect("block-job-set-speed", { return: {} }, { args: (args) => args?.speed === 0 });
    const qmp = await connect(peer);
    const wrong = await qmp.execute("block-job-set-speed", { device: "j", speed: 2048 }).catch((e) => e);
    expect(wrong.errorClass).toBe("UnexpectedCommand");
    expect(wrong.desc).toContain('with {"device":"j","speed":1024}');
    await qmp.execute("block-job-set-speed", { speed: 1024, device: "j" });
    await qmp.execute("block-job-set-speed", { device: "j", speed: 0 });
    expect(peer.remaining).toBe(0);
    expect(() => peer.assertDone()).toThrow(/speed":2048/);
  });

  it("refuses commands before qmp_capabilities, as QEMU does", async () => {
    const peer = createFakeQmpPeer({ greeting: false });
    const writer = peer.transport.writable.getWriter();
    const reader = peer.transport.readable.getReader();
    await writer.write(new TextEncoder().encode('{"execute":"query-status","id":"x"}\n'));
    const { value } = await reader.read();
    expect(JSON.parse(new TextDecoder().decode(value))).toEqual({
      error: { class: "CommandNotFound", desc: 'Command "query-status" sent before capabilities negotiation' },
      id: "x",
    });
    expect(() => peer.assertDone()).toThrow(/before capabilities negotiation/);
  });

  it("fails assertDone() and dispose for unused expectations unless allowUnused()", async () => {
    const peer = createFakeQmpPeer();
    peer.expect("query-jobs", { return: [] });
    peer.expect("query-block", { return: [] });
    await connect(peer);
    expect(() => peer.assertDone()).toThrow(/2 expected command\(s\) never sent: "query-jobs", "query-block"/);
    await expect(peer[Symbol.asyncDispose]()).rejects.toThrow(/never sent/);
    peer.allowUnused();
    peer.assertDone();
  });

  it("fails assertDone() for held replies never released", async () => {
    const peer = createFakeQmpPeer();
    peer.expect("query-jobs", { return: [] }, { hold: true });
    const qmp = await connect(peer);
    const pending = qmp.execute("query-jobs");
    await peer.whenReceived(2);
    expect(() => peer.assertDone()).toThrow(/held/);
    peer.releaseHeld();
    expect(await pending).toEqual([]);
    peer.assertDone();
  });

  it("records garbage from the client and answers like QEMU, without an id", async () => {
    const peer = createFakeQmpPeer();
    const writer = peer.transport.writable.getWriter();
    const reader = peer.transport.readable.getReader();
    await reader.read();
    await writer.write(new TextEncoder().encode("garbage\n"));
    const { value } = await reader.read();
    expect(JSON.parse(new TextDecoder().decode(value)).error.class).toBe("GenericError");
    expect(() => peer.assertDone()).toThrow(/not JSON/);
  });

  it("splits output into pieces of the requested size", async () => {
    const peer = createFakeQmpPeer({ greeting: false });
    const reader = peer.transport.readable.getReader();
    peer.fragment(4);
    peer.sendRaw("0123456789");
    const sizes: number[] = [];
    for (let i = 0; i < 3; i++) sizes.push((await reader.read()).value!.byteLength);
    expect(sizes).toEqual([4, 4, 2]);
  });

  it("after hangUp() the client reads EOF, its writes fail, and emit() throws", async () => {
    const peer = createFakeQmpPeer({ greeting: false });
    const reader = peer.transport.readable.getReader();
    const writer = peer.transport.writable.getWriter();
    peer.hangUp();
    expect((await reader.read()).done).toBe(true);
    await expect(writer.write(new Uint8Array([1]))).rejects.toThrow(/hung up/);
    expect(() => peer.emit({ event: "STOP" })).toThrow(/hung up/);
    expect(() => peer.sendRaw("x")).toThrow(/hung up/);
  });

  it("rejects bad arguments with TypeError / RangeError", () => {
    const peer = createFakeQmpPeer();
    expect(() => peer.expect("", { return: {} })).toThrow(TypeError);
    expect(() => peer.expect("stop", {} as never)).toThrow(TypeError);
    expect(() => peer.fragment(0)).toThrow(RangeError);
    expect(() => peer.fragment(1.5)).toThrow(RangeError);
    expect(() => createFakeQmpPeer({ fragmentBytes: -1 })).toThrow(RangeError);
    peer.hangUp();
  });
});
