/**
 * A running domain's `Instance` over the fake QMP peer, for the block job suites that check the exact
 * QMP exchange: a virtual clock, a bus, a job manager, and a disk of two layers (qcow2 over raw).
 */
import { spawnSync } from "node:child_process";
import { createVirtualClock } from "../../../core/clock.ts";
import { createEventBus } from "../../../core/event_bus.ts";
import { createJobManager } from "../../../core/jobs/job_manager.ts";
import { Instance } from "../../../drivers/qemu/instance.ts";
import { QmpClient } from "../../../drivers/qemu/qmp/client.ts";
import { createFakeQmpPeer, type FakeQmpPeer } from "../../../drivers/qemu/qmp/testing/mod.ts";
import type { RunDisk } from "../../../drivers/qemu/state_store.ts";

const MiB = 1024 * 1024;

/** A pid that certainly belongs to no process any more. */
export const deadPid = spawnSync("true").pid!;

/** Disk `vda`: a 4 MiB qcow2 top (`vda-0`) over a raw base (`vda-1`). */
export function twoLayerDisk(): RunDisk {
  return {
    target: "vda",
    layers: [
      { path: "/img/top.qcow2", format: "qcow2", virtualBytes: 4 * MiB, node: "vda-0", fileNode: "vda-0-file" },
      { path: "/img/base.raw", format: "raw", virtualBytes: 4 * MiB, node: "vda-1", fileNode: "vda-1-file" },
    ],
  };
}

/** A `JOB_STATUS_CHANGE` event. */
export const jsc = (id: string, status: string) => ({ event: "JOB_STATUS_CHANGE", data: { id, status } });

/**
 * A fake peer (added to `peers`, for the suite to dispose), a QMP client connected to it, and domain
 * `vm` running over it with {@linkcode twoLayerDisk}.
 */
export async function fakeInstance(peers: FakeQmpPeer[]) {
  const clock = createVirtualClock();
  const bus = createEventBus({ clock });
  const jobs = createJobManager({ bus, clock });
  const peer = createFakeQmpPeer();
  peers.push(peer);
  const qmp = await QmpClient.connect(peer.transport, { clock });
  const inst = new Instance({ name: "vm", pid: deadPid, socket: "/run/vm.qmp", qmp, disks: [twoLayerDisk()], bus, clock, state: "running" });
  return { clock, bus, jobs, peer, qmp, inst };
}
