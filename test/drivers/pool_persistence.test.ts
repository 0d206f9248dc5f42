/**
 * Pool definitions and active pools outlive the connection that defined them when the connection has a
 * state directory (qemu always; test only when given one), as libvirt's storage driver keeps its pools
 * across a daemon restart.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connect, MiB, NotFoundError, type CoreEvent } from "../../mod.ts";
import { domainConfig, Scratch, skipReal } from "./qemu/_support.ts";

let scratch: string;
beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), "virtkit-persist-"));
});
afterEach(() => rmSync(scratch, { recursive: true, force: true }));

async function defineImages(uri: string, options: { stateDir?: string }) {
  const conn = await connect(uri, options);
  const pool = await conn.pools.create({ name: "images", type: "dir", path: join(scratch, "images") });
  await pool.volumes.create({ name: "disk.raw", capacityBytes: MiB(4) });
  await conn.close();
}

describe("pool definitions and a state directory", () => {
  it.each([
    { driver: "test", uri: "test:///empty" },
    { driver: "qemu", uri: "qemu:///session" },
  ])("a $driver connection finds the pools an earlier one defined in the same state directory", async ({ uri }) => {
    const stateDir = join(scratch, "state");
    await defineImages(uri, { stateDir });
    const again = await connect(uri, { stateDir });
    const pool = await again.pools.get("images");
    expect(await pool.config()).toEqual({ name: "images", type: "dir", path: join(scratch, "images") });
    // Active when the last connection closed, so active again (a libvirtd restart keeps active pools).
    expect(await pool.info()).toMatchObject({ state: "active", autostart: false });
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["disk.raw"]);
    await pool.stop();
    await again.close();
    const third = await connect(uri, { stateDir });
    expect((await (await third.pools.get("images")).info()).state).toBe("inactive");
    await third.close();
    const other = await connect(uri, { stateDir: join(scratch, "elsewhere") });
    await expect(other.pools.get("images")).rejects.toThrow(NotFoundError);
    await other.close();
  });

  it("a test connection without a state directory forgets its pools when it closes", async () => {
    await defineImages("test:///empty", {});
    const again = await connect("test:///empty");
    await expect(again.pools.get("images")).rejects.toThrow(NotFoundError);
    await again.close();
  });
});

describe("an active pool across a restart", () => {
  it.each([
    { driver: "test", uri: "test:///empty" },
    { driver: "qemu", uri: "qemu:///session" },
  ])("$driver: a pool whose directory is gone comes back inactive with a start-failed event", async ({ uri }) => {
    const stateDir = join(scratch, "state");
    await defineImages(uri, { stateDir });
    rmSync(join(scratch, "images"), { recursive: true });
    const again = await connect(uri, { stateDir });
    const pool = await again.pools.get("images");
    expect((await pool.info()).state).toBe("inactive");
    // The test driver restores pools while it opens, qemu at the first storage call: replay from the start.
    const events: CoreEvent[] = [];
    const done = new AbortController();
    for await (const event of again.events.subscribe({ types: ["pool:stopped"], since: 0, signal: done.signal })) {
      events.push(event);
      done.abort();
    }
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ pool: "images", reason: "start-failed" });
    expect((events[0] as { error?: string }).error).toContain(join(scratch, "images"));
    await again.close();
  });

  it.skipIf(skipReal)("qemu: a domain defined on a dir pool volume starts on a new connection (real QEMU)", async () => {
    const real = new Scratch();
    try {
      // The reported sequence: create a dir pool, define a domain on one of its volumes, close.
      const first = await real.connect();
      const pool = await first.pools.create({ name: "img", type: "dir", path: join(real.dir, "img") });
      await pool.volumes.create({ name: "disk.qcow2", capacityBytes: MiB(16), format: "qcow2" });
      await first.domains.define(domainConfig("vm", [{ target: "vda", volume: { pool: "img", name: "disk.qcow2" }, format: "qcow2" }]));
      await first.close();
      // A management service restarting: a new connection on the same state directory starts the domain.
      const second = await real.connect();
      const domain = await second.domains.get("vm");
      await domain.start();
      expect((await domain.info()).state).toBe("running");
      expect((await domain.disks())[0]).toMatchObject({ target: "vda", path: join(real.dir, "img", "disk.qcow2") });
      await domain.destroy();
      // Autostart is kept too. Stopped, the pool stays stopped on the next connection of the same boot, and
      // starts after a host boot (a different boot id in its file) only because of the flag.
      const img = await second.pools.get("img");
      await img.setAutostart(true);
      await img.stop();
      await second.close();
      const third = await real.connect();
      expect(await (await third.pools.get("img")).info()).toMatchObject({ state: "inactive", autostart: true });
      await third.close();
      const file = join(real.stateDir, "pools", "img.json");
      const saved = JSON.parse(readFileSync(file, "utf8"));
      expect(saved.bootId).toBe(readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim());
      writeFileSync(file, JSON.stringify({ ...saved, bootId: "00000000-0000-0000-0000-000000000000" }));
      const fourth = await real.connect();
      expect(await (await fourth.pools.get("img")).info()).toMatchObject({ state: "active", autostart: true });
      await fourth.close();
    } finally {
      await real.cleanup();
    }
  });
});
