/**
 * Block copy (mirror) and block commit on real QEMU: guest writes during the mirror through HMP
 * `qemu-io`, `ready`, pivot, abort in and before `ready`, QEMU killed in `ready`; active and
 * intermediate commit. Every image is checked with `qemu-img check` and `qemu-img compare`.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { afterEach, describe, expect, it } from "vitest";
import { JobError, StateError } from "../../../core/errors.ts";
import type { Connection } from "../../../core/connection.ts";
import type { Domain } from "../../../core/domain.ts";
import type { Job } from "../../../core/job.ts";
import type { QemuConnection } from "../../../drivers/qemu/connection.ts";
import { backingOf, domainConfig, MiB, Scratch, skipReal, until } from "./_support.ts";

const scratches: Scratch[] = [];
afterEach(async () => {
  for (const s of scratches.splice(0)) await s.cleanup();
});

interface Running {
  s: Scratch;
  conn: Connection;
  driver: QemuConnection;
  dom: Domain;
  overlay: string;
  ref: string;
  base: string;
}

async function running(name = "copy"): Promise<Running> {
  const s = new Scratch();
  scratches.push(s);
  const { overlay, ref, base } = s.images(32);
  const { conn, driver } = await s.connectWithDriver();
  const dom = await conn.domains.define(domainConfig(name, [{ target: "vda", path: overlay, format: "qcow2" }]));
  await dom.start();
  return { s, conn, driver, dom, overlay, ref, base };
}

/** Exit code of a qemu-img command (0: clean / identical). */
function qemuImg(args: string[]): number {
  try {
    execFileSync("qemu-img", args, { stdio: "pipe" });
    return 0;
  } catch (error) {
    return (error as { status: number }).status;
  }
}

async function whenReady(job: Job): Promise<void> {
  await until(async () => (await job.info()).state === "ready", `job ${job.id} to be ready`, 20_000);
}

/** Writes as the guest would, through HMP `qemu-io` on the disk's active node. */
async function guestWrite(r: Running, node: string, pattern: number, offset: string, length: string): Promise<void> {
  // QEMU 7.2 takes a node name where a device name is asked; qemu-io's own report goes to QEMU's stdout.
  const out = await r.driver.humanMonitorCommand(r.dom.name, `qemu-io ${node} "write -P ${pattern} ${offset} ${length}"`);
  expect(out).not.toContain("Error");
}

describe("qemu driver: block copy on real QEMU", () => {
  it.skipIf(skipReal)("mirrors while the guest writes, is ready in sync, pivots on finalize(); the copy equals the source with the writes", async () => {
    const r = await running();
    const { s, dom, overlay } = r;
    const dest = join(s.dir, "copy.qcow2");
    const events: string[] = [];
    r.conn.events.on("job:*", (e) => events.push(e.type));
    const job = await dom.blockCopy("vda", { destination: { path: dest }, bandwidth: 8 * MiB });
    expect(job.type).toBe("block-copy");
    await guestWrite(r, "vda-0", 0x5a, "1M", "64k");
    await expect(job.finalize()).rejects.toBeInstanceOf(StateError);
    await job.setSpeed(0);
    await whenReady(job);
    expect(events).toContain("job:ready");
    await guestWrite(r, "vda-0", 0x6b, "20M", "128k");
    await job.finalize();
    await job.wait();
    expect((await job.info()).state).toBe("completed");
    const [vda] = await dom.disks();
    expect([vda?.path, vda?.backingChain]).toEqual([dest, []]);
    expect((await dom.config()).disks[0]).toMatchObject({ path: dest, format: "qcow2" });
    // The guest now writes to the copy.
    await guestWrite(r, await nodeOf(r, dest), 0x7c, "2M", "4k");
    await dom.destroy();
    expect(qemuImg(["check", "-q", dest])).toBe(0);
    const read = execFileSync("qemu-io", ["-f", "qcow2", "-c", "read -P 0x5a 1M 64k", "-c", "read -P 0x6b 20M 128k", "-c", "read -P 0x7c 2M 4k", dest], { encoding: "utf8" });
    expect(read).not.toContain("Pattern verification failed");
    // Apart from the write after the pivot, the copy is the source with the guest's writes.
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x7c 2M 4k", overlay]);
    expect(qemuImg(["compare", "-q", "-f", "qcow2", "-F", "qcow2", dest, overlay])).toBe(0);
    expect(backingOf(dest)).toBeUndefined();
  });

  it.skipIf(skipReal)("abort() in ready leaves the domain on its source and the destination a consistent copy", async () => {
    const r = await running();
    const dest = join(r.s.dir, "point.raw");
    const job = await r.dom.blockCopy("vda", { destination: { path: dest }, format: "raw" });
    await whenReady(job);
    await guestWrite(r, "vda-0", 0x44, "3M", "64k");
    await job.abort();
    await expect(job.wait()).rejects.toBeInstanceOf(JobError);
    expect((await job.info()).state).toBe("aborted");
    expect((await r.dom.disks())[0]?.path).toBe(r.overlay);
    await r.dom.destroy();
    expect(qemuImg(["compare", "-q", "-f", "raw", "-F", "qcow2", dest, r.overlay])).toBe(0);
  });

  it.skipIf(skipReal)("abort() before ready removes the destination it created; a dir pool destination can be shallow", async () => {
    const r = await running();
    const dest = join(r.s.dir, "half.qcow2");
    const job = await r.dom.blockCopy("vda", { destination: { path: dest }, bandwidth: MiB });
    await until(() => existsSync(dest), "the destination to exist");
    await job.abort();
    await expect(job.wait()).rejects.toBeInstanceOf(JobError);
    expect(existsSync(dest)).toBe(false);
    const pool = await r.conn.pools.create({ name: "images", type: "dir", path: join(r.s.dir, "pool") });
    const shallow = await r.dom.blockCopy("vda", { destination: { pool: "images", name: "shallow.qcow2" }, shallow: true });
    await whenReady(shallow);
    await shallow.finalize();
    await shallow.wait();
    const [vda] = await r.dom.disks();
    expect(vda?.volume).toEqual({ pool: "images", name: "shallow.qcow2" });
    expect(vda?.backingChain.map((l) => l.path)).toEqual([r.base]);
    await r.dom.destroy();
    const volume = await pool.volumes.get("shallow.qcow2");
    expect(backingOf(volume.path)).toBe(r.base);
    expect(qemuImg(["compare", "-q", "-f", "qcow2", "-F", "raw", volume.path, r.ref])).toBe(0);
  });

  it.skipIf(skipReal)("a shallow copy to a host path: virtkit's image engine makes a qcow2 of the disk's size over the source's backing; qemu-img check and info agree", async () => {
    const r = await running();
    const dest = join(r.s.dir, "shallow.qcow2");
    const job = await r.dom.blockCopy("vda", { destination: { path: dest }, shallow: true });
    await whenReady(job);
    await job.finalize();
    await job.wait();
    expect((await r.dom.disks())[0]?.backingChain.map((l) => l.path)).toEqual([r.base]);
    await r.dom.destroy();
    const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", dest], { encoding: "utf8" })) as Record<string, unknown>;
    expect([info.format, info["virtual-size"], info["backing-filename"], info["backing-filename-format"]]).toEqual(["qcow2", 32 * MiB, r.base, "raw"]);
    expect(qemuImg(["check", "-q", dest])).toBe(0);
    expect(qemuImg(["compare", "-q", "-f", "qcow2", "-F", "raw", dest, r.ref])).toBe(0);
  });

  it.skipIf(skipReal)("QEMU killed while a copy is ready: the job fails within a second, the source is intact, the domain is crashed", async () => {
    const r = await running();
    const job = await r.dom.blockCopy("vda", { destination: { path: join(r.s.dir, "lost.qcow2") } });
    await whenReady(job);
    const { pid } = JSON.parse(readFileSync(join(r.s.stateDir, "run", "copy.json"), "utf8")) as { pid: number };
    const killedAt = Date.now();
    process.kill(pid, "SIGKILL");
    await expect(job.wait()).rejects.toBeInstanceOf(JobError);
    expect(Date.now() - killedAt).toBeLessThan(1000);
    expect((await job.info()).error).toMatch(/Block copy of disk "vda" of domain "copy" failed: QEMU \(pid \d+\) was killed by SIGKILL/);
    await until(async () => (await r.dom.info()).state === "crashed", "the domain to read crashed");
    expect(qemuImg(["check", "-q", r.overlay])).toBe(0);
    expect(qemuImg(["compare", "-q", "-f", "qcow2", "-F", "raw", r.overlay, r.ref])).toBe(0);
  });
});

describe("qemu driver: a copy in ready across connections", () => {
  it.skipIf(skipReal)("a new connection re-attaches a ready copy under its id, and finalize() there pivots", async () => {
    const r = await running("again");
    const dest = join(r.s.dir, "again.qcow2");
    const job = await r.dom.blockCopy("vda", { destination: { path: dest } });
    await whenReady(job);
    await r.conn.close();
    const second = await r.s.connect();
    const again = await second.jobs.get(job.id);
    expect([again.type, (await again.info()).state]).toEqual(["block-copy", "ready"]);
    await again.finalize();
    await again.wait();
    const dom = await second.domains.get("again");
    expect((await dom.disks())[0]?.path).toBe(dest);
    expect((await dom.config()).disks[0]?.path).toBe(dest);
    await dom.destroy();
    expect(qemuImg(["compare", "-q", "-f", "qcow2", "-F", "qcow2", dest, r.overlay])).toBe(0);
  });
});

describe("qemu driver: block commit on real QEMU", () => {
  it.skipIf(skipReal)("an active commit is ready in sync and pivots onto the base; the base then reads as the overlay did", async () => {
    const r = await running("commit");
    const job = await r.dom.blockCommit("vda");
    expect(job.type).toBe("block-commit");
    await whenReady(job);
    await guestWrite(r, "vda-0", 0x31, "5M", "64k");
    await job.finalize();
    await job.wait();
    const [vda] = await r.dom.disks();
    expect([vda?.path, vda?.format, vda?.backingChain]).toEqual([r.base, "raw", []]);
    expect((await r.dom.config()).disks[0]).toMatchObject({ path: r.base, format: "raw" });
    await r.dom.destroy();
    execFileSync("qemu-io", ["-f", "raw", "-c", "write -P 0x31 5M 64k", r.ref]);
    expect(qemuImg(["compare", "-q", "-f", "raw", "-F", "raw", r.base, r.ref])).toBe(0);
  });

  it.skipIf(skipReal)("abort() of an active commit in ready leaves the top in use and the base holding the committed data", async () => {
    const r = await running("keep");
    const job = await r.dom.blockCommit("vda");
    await whenReady(job);
    await job.abort();
    await expect(job.wait()).rejects.toBeInstanceOf(JobError);
    expect((await job.info()).state).toBe("aborted");
    const [vda] = await r.dom.disks();
    expect([vda?.path, vda?.backingChain.map((l) => l.path)]).toEqual([r.overlay, [r.base]]);
    await r.dom.destroy();
    expect(qemuImg(["compare", "-q", "-f", "raw", "-F", "raw", r.base, r.ref])).toBe(0);
    expect(qemuImg(["check", "-q", r.overlay])).toBe(0);
  });

  it.skipIf(skipReal)("an intermediate commit completes in one phase and re-links the top to the base", async () => {
    const s = new Scratch();
    scratches.push(s);
    const { overlay: mid, ref, base } = s.images(16);
    const top = join(s.dir, "top.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", mid, "-F", "qcow2", top]);
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x99 8M 1M", top]);
    const { conn } = await s.connectWithDriver();
    const dom = await conn.domains.define(domainConfig("mid", [{ target: "vda", path: top, format: "qcow2" }]));
    await dom.start();
    const states: string[] = [];
    conn.events.on("job:state", (e) => states.push(e.job.state));
    const job = await dom.blockCommit("vda", { top: "vda[1]", base: base, deleteCommitted: true });
    await job.wait();
    expect(existsSync(mid)).toBe(false);
    expect(states).not.toContain("ready");
    const [vda] = await dom.disks();
    expect(vda?.backingChain.map((l) => l.path)).toEqual([base]);
    await dom.destroy();
    expect(backingOf(top)).toBe(base);
    expect(qemuImg(["check", "-q", top])).toBe(0);
    execFileSync("qemu-io", ["-f", "raw", "-c", "write -P 0x99 8M 1M", ref]);
    expect(qemuImg(["compare", "-q", "-f", "qcow2", "-F", "raw", top, ref])).toBe(0);
  });
});

/** The node the disk's active image has now (after a pivot, the copy's). */
async function nodeOf(r: Running, path: string): Promise<string> {
  const out = await r.driver.humanMonitorCommand(r.dom.name, "info block -n");
  const line = out.split("\n").find((l) => l.includes(path) && !l.includes("-file:"));
  return line!.split(":")[0]!.trim();
}
