/**
 * Block copy and active commit against the fake QMP peer: the exact QMP exchange, and which commands go
 * out back to back without waiting for replies (QEMU runs a monitor's commands in order): the
 * destination's blockdev-adds and the mirror; the base's reopen and the commit; on concluded, the
 * job-dismiss and the blockdev-dels of the nodes the pivot dropped, while the definition is written. The
 * job completes only once the definition is saved. Replies are held to prove what was sent before any.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { DiskSource, LiveBlockCommitRequest, LiveBlockCopyRequest } from "../../../core/driver.ts";
import type { StorageAccess } from "../../../core/storage_backend.ts";
import { QmpError } from "../../../core/errors.ts";
import { probeImage } from "../../../core/image/probe.ts";
import { createQcow2 } from "../../../core/image/qcow2/create.ts";
import { positionalFileOf } from "../../../drivers/dir/positional_handle.ts";
import type { QemuBlockJobEnv } from "../../../drivers/qemu/block_job.ts";
import { startQemuCommit } from "../../../drivers/qemu/block_commit.ts";
import { startQemuCopy } from "../../../drivers/qemu/block_copy.ts";
import type { FakeQmpPeer } from "../../../drivers/qemu/qmp/testing/mod.ts";
import { fakeInstance, jsc } from "./_fake_qemu.ts";
import type { JsonObject } from "../../../drivers/qemu/qmp/types.ts";
import { until } from "./_support.ts";
import { hostDirectoryStorage } from "../../_support/host_directory_storage.ts";

/** What the image engine's probe reads from a file's header. */
async function openImageFile(path: string): Promise<{ format: string; virtualSizeBytes: number }> {
  const file = positionalFileOf(await open(path, "r"));
  try {
    return await probeImage(file, path);
  } finally {
    await file.close();
  }
}

const MiB = 1024 * 1024;
const peers: FakeQmpPeer[] = [];
const scratch: string[] = [];
afterEach(async () => {
  for (const peer of peers.splice(0)) await peer[Symbol.asyncDispose]();
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fresh scratch directory, removed after the test. */
function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "vk-copy-fake-"));
  scratch.push(dir);
  return dir;
}

async function setup() {
  const { clock, peer, inst, jobs, bus } = await fakeInstance(peers);
  const saves: DiskSource[] = [];
  let releaseSave: () => void = () => {};
  const saved = new Promise<void>((resolve) => (releaseSave = resolve));
  const removed: unknown[] = [];
  const env: QemuBlockJobEnv = {
    jobs,
    clock,
    track: () => {},
    persist: () => Promise.resolve(),
    // The definition write waits for the test, so the test sees what happens while it is under way.
    setDiskSource: (_domain, _disk, source) => (saves.push(source), saved),
    removeImage: (image) => Promise.resolve(void removed.push(image)),
    finished: () => Promise.resolve(),
    dismissed: () => Promise.resolve(),
  };
  const states: string[] = [];
  bus.on("job:state", (e) => states.push(e.job.state));
  return { peer, inst, env, jobs, saves, releaseSave, removed, states };
}

const args = (check: (a: JsonObject) => boolean) => (a: JsonObject | undefined) => a !== undefined && check(a);
const names = (peer: FakeQmpPeer, from: number) => peer.received.slice(from).map((c) => `${c.execute} ${String(c.arguments?.["node-name"] ?? c.arguments?.id ?? "")}`.trim());

/** ready -> job-complete -> pending -> job-finalize -> COMPLETED + concluded, as QEMU does for a pivot. */
function expectPivot(peer: FakeQmpPeer, id: string, type: string): void {
  peer.expect("job-complete", { return: {} }, { args: { id }, thenEmit: [jsc(id, "waiting"), jsc(id, "pending")] });
  peer.expect("job-finalize", { return: {} }, {
    args: { id },
    emitBefore: [{ event: "BLOCK_JOB_COMPLETED", data: { device: id, len: 4 * MiB, offset: 4 * MiB, speed: 0, type } }, jsc(id, "concluded")],
  });
}

describe("qemu block copy over QMP (fake peer)", () => {
  it("sends both blockdev-adds and blockdev-mirror before any reply; after the pivot, job-dismiss and every blockdev-del before any reply", async () => {
    const { peer, inst, env, saves, releaseSave, states } = await setup();
    const dest = join(scratchDir(), "copy.qcow2");
    await using storage = hostDirectoryStorage();
    peer.expect("blockdev-add", { return: {} }, { hold: true, args: args((a) => a.driver === "file" && a.filename === dest) });
    peer.expect("blockdev-add", { return: {} }, { hold: true, args: args((a) => a.driver === "qcow2" && a.backing === null) });
    peer.expect("blockdev-mirror", { return: {} }, {
      hold: true,
      args: args((a) => a["job-id"] === "job-1" && a.device === "vda-0" && a.sync === "full" && a["auto-finalize"] === false && a["auto-dismiss"] === false),
      emitBefore: [jsc("job-1", "created"), jsc("job-1", "running")],
    });
    peer.expect("query-jobs", { return: [] });
    const request: LiveBlockCopyRequest = {
      domain: "vm", disk: { target: "vda", path: "/img/top.qcow2" }, locks: [], bandwidth: 0,
      destination: { path: dest }, format: "qcow2", shallow: false, reuseExisting: false,
    };
    const starting = startQemuCopy(env, storage, inst, inst.disks[0]!, request);
    await peer.whenReceived(4); // qmp_capabilities, then the three, no reply sent yet
    // The destination was made before the adds, in-process by the image engine: core had the dir backend
    // over its directory create it (the copy has no qemu-img to run: its deps hold no command runner).
    expect(storage.creates).toEqual([{ name: "copy.qcow2", format: "qcow2", capacityBytes: 4 * MiB }]);
    const image = await openImageFile(dest);
    expect([image.format, image.virtualSizeBytes]).toEqual(["qcow2", 4 * MiB]);
    expect(names(peer, 1)).toEqual(["blockdev-add " + peer.received[1]!.arguments!["node-name"], "blockdev-add " + peer.received[2]!.arguments!["node-name"], "blockdev-mirror"]);
    const node = String(peer.received[2]!.arguments!["node-name"]);
    expect(peer.received[1]!.arguments!["node-name"]).toBe(`${node}-file`);
    expect(peer.received[3]!.arguments!.target).toBe(node);
    peer.releaseHeld();
    const job = (await starting).job;
    peer.emit(jsc("job-1", "ready"));
    await until(async () => (await job.info()).state === "ready", "ready");

    expectPivot(peer, "job-1", "mirror");
    peer.expect("job-dismiss", { return: {} }, { hold: true, args: { id: "job-1" }, thenEmit: [jsc("job-1", "null")] });
    for (const n of ["vda-0", "vda-0-file", "vda-1", "vda-1-file"]) peer.expect("blockdev-del", { return: {} }, { hold: true, args: { "node-name": n } });
    const sent = peer.received.length;
    await job.finalize();
    await peer.whenReceived(sent + 2 + 5);
    expect(names(peer, sent + 2)).toEqual(["job-dismiss job-1", "blockdev-del vda-0", "blockdev-del vda-0-file", "blockdev-del vda-1", "blockdev-del vda-1-file"]);
    // The definition is being written meanwhile: the disk already names the copy in memory.
    await until(() => saves.length === 1, "the definition write to start");
    expect(saves[0]).toEqual({ path: dest, format: "qcow2" });
    expect(inst.disks[0]!.layers.map((l) => l.path)).toEqual([dest]);
    peer.releaseHeld();
    // Every reply is in (a later command's reply comes after them): the job still waits for the definition.
    peer.expect("query-status", { return: { status: "running", running: true } });
    await inst.qmp.execute("query-status");
    expect(states.at(-1)).toBe("ready");
    releaseSave();
    await job.wait();
    expect(states.at(-1)).toBe("completed");
    peer.assertDone();
  });

  it("a destination QEMU refuses: the add's error is thrown, nothing QEMU did not add is deleted, the created image goes", async () => {
    const { peer, inst, env, jobs, removed } = await setup();
    const dest = join(scratchDir(), "copy.raw");
    await using storage = hostDirectoryStorage();
    peer.expect("blockdev-add", { return: {} }, { args: args((a) => a.driver === "file") });
    peer.expect("blockdev-add", { error: { class: "GenericError", desc: "Image is not in raw format" } }, { args: args((a) => a.driver === "raw") });
    peer.expect("blockdev-mirror", { error: { class: "GenericError", desc: "Cannot find device='' nor node-name='vda-mx'" } });
    // Only the file node was added: only it is deleted again.
    peer.expect("blockdev-del", { return: {} }, { args: args((a) => String(a["node-name"]).endsWith("-file")) });
    const request: LiveBlockCopyRequest = {
      domain: "vm", disk: { target: "vda", path: "/img/top.qcow2" }, locks: [], bandwidth: 0,
      destination: { path: dest }, format: "raw", shallow: false, reuseExisting: false,
    };
    const error = await startQemuCopy(env, storage, inst, inst.disks[0]!, request).catch((e) => e);
    expect(error).toBeInstanceOf(QmpError);
    expect(error.message).toContain("Image is not in raw format");
    expect(removed).toEqual([{ path: dest }]);
    expect(await jobs.list()).toEqual([]);
    peer.assertDone();
  });
  it("a reused host path: core reads its format from the header in-process, makes nothing, and a refusal leaves the file", async () => {
    const { peer, inst, env, jobs, removed } = await setup();
    const dest = join(scratchDir(), "spare.qcow2");
    const file = positionalFileOf(await open(dest, "wx+"));
    await createQcow2(file, { capacityBytes: 4 * MiB });
    await file.close();
    await using storage = hostDirectoryStorage();
    peer.expect("blockdev-add", { return: {} }, { args: args((a) => a.driver === "file" && a.filename === dest) });
    // The probed format names the format node's driver.
    peer.expect("blockdev-add", { error: { class: "GenericError", desc: "Could not open the image" } }, { args: args((a) => a.driver === "qcow2") });
    peer.expect("blockdev-mirror", { error: { class: "GenericError", desc: "Cannot find device='' nor node-name='vda-mx'" } });
    peer.expect("blockdev-del", { return: {} }, { args: args((a) => String(a["node-name"]).endsWith("-file")) });
    const request: LiveBlockCopyRequest = {
      domain: "vm", disk: { target: "vda", path: "/img/top.qcow2" }, locks: [], bandwidth: 0,
      destination: { path: dest }, shallow: false, reuseExisting: true,
    };
    const error = await startQemuCopy(env, storage, inst, inst.disks[0]!, request).catch((e) => e);
    expect(error).toBeInstanceOf(QmpError);
    expect(storage.creates).toEqual([]);
    expect(removed).toEqual([]);
    expect((await openImageFile(dest)).format).toBe("qcow2");
    expect(await jobs.list()).toEqual([]);
    peer.assertDone();
  });
});

describe("qemu active commit over QMP (fake peer)", () => {
  const request: LiveBlockCommitRequest = {
    domain: "vm", disk: { target: "vda", path: "/img/top.qcow2" }, locks: [], bandwidth: 0,
    chain: [{ path: "/img/top.qcow2", format: "qcow2" }, { path: "/img/base.raw", format: "raw" }], topIndex: 0, baseIndex: 1, deleteCommitted: false,
  };
  const storage = { findVolume: () => Promise.reject(new Error("no pool holds it")) } as unknown as StorageAccess;

  it("sends block-commit right behind blockdev-reopen; after the pivot, job-dismiss and the top's blockdev-dels before any reply", async () => {
    const { peer, inst, env, saves, releaseSave, states } = await setup();
    peer.expect("blockdev-reopen", { return: {} }, { hold: true, args: args((a) => JSON.stringify(a).includes('"read-only":false')) });
    peer.expect("block-commit", { return: {} }, {
      hold: true,
      args: { "job-id": "job-1", device: "vda-0", "base-node": "vda-1", "auto-finalize": false, "auto-dismiss": false },
      emitBefore: [jsc("job-1", "created"), jsc("job-1", "running")],
    });
    peer.expect("query-jobs", { return: [] });
    const starting = startQemuCommit(env, { storage }, inst, inst.disks[0]!, request);
    await peer.whenReceived(3);
    expect(names(peer, 1)).toEqual(["blockdev-reopen", "block-commit"]);
    peer.releaseHeld();
    const job = (await starting).job;
    peer.emit(jsc("job-1", "ready"));
    await until(async () => (await job.info()).state === "ready", "ready");
    expectPivot(peer, "job-1", "commit");
    peer.expect("job-dismiss", { return: {} }, { hold: true, args: { id: "job-1" } });
    for (const n of ["vda-0", "vda-0-file"]) peer.expect("blockdev-del", { return: {} }, { hold: true, args: { "node-name": n } });
    const sent = peer.received.length;
    await job.finalize();
    await peer.whenReceived(sent + 2 + 3);
    expect(names(peer, sent + 2)).toEqual(["job-dismiss job-1", "blockdev-del vda-0", "blockdev-del vda-0-file"]);
    await until(() => saves.length === 1, "the definition write to start");
    expect(saves[0]).toEqual({ path: "/img/base.raw", format: "raw" });
    peer.releaseHeld();
    releaseSave();
    await job.wait();
    expect(states.at(-1)).toBe("completed");
    expect(inst.disks[0]!.layers.map((l) => l.node)).toEqual(["vda-1"]);
    peer.assertDone();
  });

  it("a refused reopen is the error thrown (QEMU then refuses the commit on the read-only base)", async () => {
    const { peer, inst, env, jobs } = await setup();
    peer.expect("blockdev-reopen", { error: { class: "GenericError", desc: "Permission denied" } });
    peer.expect("block-commit", { error: { class: "GenericError", desc: "Block node is read-only" } });
    const error = await startQemuCommit(env, { storage }, inst, inst.disks[0]!, request).catch((e) => e);
    expect(error).toBeInstanceOf(QmpError);
    expect(error.message).toContain("Permission denied");
    expect(await jobs.list()).toEqual([]);
    peer.assertDone();
  });
});
