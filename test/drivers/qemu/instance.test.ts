/**
 * A running domain's state as QMP reports it (fake peer): STOP/RESUME and the verbs report each change
 * once, a SHUTDOWN before the end is a stop, an end without one is a crash, detach() reports nothing.
 */
import { spawnSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { createRealClock } from "../../../core/clock.ts";
import { createEventBus } from "../../../core/event_bus.ts";
import { Instance } from "../../../drivers/qemu/instance.ts";
import { QmpClient } from "../../../drivers/qemu/qmp/client.ts";
import { createFakeQmpPeer, type FakeQmpPeer } from "../../../drivers/qemu/qmp/testing/mod.ts";

const peers: FakeQmpPeer[] = [];
afterEach(async () => {
  for (const peer of peers.splice(0)) await peer[Symbol.asyncDispose]();
});
const deadPid = spawnSync("true").pid!;

async function setup(exited?: Promise<number | string>) {
  const clock = createRealClock();
  const bus = createEventBus({ clock });
  const events: string[] = [];
  bus.on("domain:*", (e) => events.push(`${e.type}:${e.reason}`));
  const peer = createFakeQmpPeer();
  peers.push(peer);
  const qmp = await QmpClient.connect(peer.transport);
  const inst = new Instance({ name: "vm", pid: deadPid, socket: "/x.qmp", qmp, disks: [], bus, clock, state: "running", ...(exited ? { exited } : {}) });
  return { peer, inst, events };
}

describe("qemu instance", () => {
  it("STOP and RESUME events and the verbs' own reports give one event per change", async () => {
    const { peer, inst, events } = await setup();
    const stop = inst.qmp.waitFor("STOP");
    peer.emit({ event: "STOP" });
    await stop;
    expect(inst.state).toBe("paused");
    inst.markState("paused"); // the verb's own report after the event: no second event
    inst.markState("running"); // the verb's report before the event
    const resume = inst.qmp.waitFor("RESUME");
    peer.emit({ event: "RESUME" });
    await resume;
    expect(inst.state).toBe("running");
    expect(events).toEqual(["domain:suspended:paused", "domain:resumed:unpaused"]);
  });

  it("an end after SHUTDOWN is a stop (domain:stopped, shutoff); the end hooks run first", async () => {
    const { peer, inst, events } = await setup();
    const order: string[] = [];
    inst.onEnd((end) => order.push(`hook:${end.expected}`));
    peer.emit({ event: "SHUTDOWN", data: { guest: true, reason: "guest-shutdown" } });
    peer.hangUp();
    const end = await inst.ended;
    order.push(events.at(-1)!);
    expect(end.expected).toBe(true);
    expect(inst.state).toBe("shutoff");
    expect(inst.isEnded).toBe(true);
    expect(order).toEqual(["hook:true", "domain:stopped:shutdown"]);
  });

  it("an end nobody asked for is a crash, with the exit status in the message", async () => {
    let exit!: (code: number | string) => void;
    const { peer, inst, events } = await setup(new Promise((resolve) => (exit = resolve)));
    peer.hangUp();
    exit("SIGSEGV");
    const end = await inst.ended;
    expect(end).toEqual({ expected: false, why: `QEMU (pid ${deadPid}) was killed by SIGSEGV` });
    expect(inst.state).toBe("crashed");
    expect(events).toEqual(["domain:crashed:crashed"]);
  });

  it("expectExit() names the reason of the stop; detach() closes QMP and reports nothing", async () => {
    const first = await setup();
    first.inst.expectExit("destroyed");
    first.peer.hangUp();
    await first.inst.ended;
    expect(first.events).toEqual(["domain:stopped:destroyed"]);
    const second = await setup();
    await second.inst.detach();
    await second.peer.clientClosed;
    expect(second.inst.isEnded).toBe(false);
    expect(second.events).toEqual([]);
  });
});
