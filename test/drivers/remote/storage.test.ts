/**
 * Storage through the remote driver against a real libvirtd 9.0 (its storage driver, a `dir` pool in a
 * scratch directory), with virsh and qemu-img as referees: pool lifecycle from a `PoolConfig`, volumes
 * created from the volume spec, lookup by name, key and path, resize, clone as a job, upload and
 * download over libvirt streams compared byte for byte with `virsh vol-download` (a sparse volume over a
 * sparse stream too), thin volumes and sparse clones, a capped download,
 * and libvirt's errors on the error tree.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, MiB } from "../../../mod.ts";
import type { Connection } from "../../../core/connection.ts";
import { ConflictError, NotFoundError, UnsupportedError } from "../../../core/errors.ts";
import type { StoragePool } from "../../../core/storage_pool.ts";
import { type RunningLibvirtd, skipLibvirtd, startLibvirtd } from "../../_support/libvirtd.ts";

async function readAll(readable: ReadableStream<Uint8Array>): Promise<Buffer> {
  return Buffer.from(await new Response(readable).arrayBuffer());
}

describe.skipIf(skipLibvirtd)("remote driver -> libvirtd storage", () => {
  let daemon: RunningLibvirtd;
  let conn: Connection;
  let pool: StoragePool;
  let poolDir: string;
  beforeAll(async () => {
    daemon = await startLibvirtd({ driver: "qemu" });
    poolDir = join(daemon.mkdir("pools"), "p1");
    conn = await connect(daemon.uri("qemu"));
    pool = await conn.pools.create({ name: "p1", type: "dir", path: poolDir });
  }, 60_000);
  afterAll(async () => {
    await conn?.close().catch(() => {});
    await daemon?.stop();
  });

  it("defines, builds and starts a dir pool from a PoolConfig, as virsh sees it", async () => {
    expect(pool.type).toBe("dir");
    expect(await pool.config()).toMatchObject({ name: "p1", type: "dir", path: poolDir });
    expect((await pool.info()).state).toBe("active");
    expect(daemon.virsh(["pool-info", "p1"])).toMatch(/State:\s+running/);
    expect((await conn.pools.list()).map((p) => p.name)).toContain("p1");
    await expect(conn.pools.define({ name: "p1", type: "dir", path: poolDir })).rejects.toBeInstanceOf(ConflictError);
    await expect(conn.pools.get("nope")).rejects.toMatchObject({ name: "NotFoundError", objectType: "pool", objectName: "nope" });
  });

  it("an iscsi pool's CHAP password never goes to libvirt: define is an UnsupportedError; a named secret is defined, as virsh sees it", async () => {
    const san = { type: "iscsi" as const, host: "127.0.0.1", port: 3261, target: "iqn.2026-01.org.example:remote-auth", initiator: "iqn.2026-01.org.example:me" };
    const error = await conn.pools.define({ ...san, name: "chap-pw", auth: { type: "chap", username: "alice", password: "never-sent" } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedError);
    expect((error as Error).message).toContain("libvirt needs a secret object");
    // libvirt has no mutual CHAP: it would drop the target's account.
    const mutual = { type: "chap" as const, username: "alice", secret: { usage: "a" }, mutual: { username: "tgt", secret: { usage: "m" } } };
    expect(await conn.pools.define({ ...san, name: "chap-mutual", auth: mutual }).catch((e: unknown) => e)).toBeInstanceOf(UnsupportedError);
    expect(daemon.virsh(["pool-list", "--all", "--name"])).not.toMatch(/chap-/);
    const pool = await conn.pools.define({ ...san, name: "chap-named", auth: { type: "chap", username: "alice", secret: { usage: "san-chap" } } });
    expect(daemon.virsh(["pool-dumpxml", "chap-named"])).toMatch(/<auth type='chap' username='alice'>\s*<secret usage='san-chap'\/>/);
    expect(await pool.config()).toMatchObject({ initiator: san.initiator, auth: { type: "chap", username: "alice", secret: { usage: "san-chap" } } });
    await pool.undefine();
  });

  it("creates volumes from the spec, looks them up three ways, resizes and deletes them", async () => {
    const raw = await pool.volumes.create({ name: "a.raw", capacityBytes: MiB(4), format: "raw" });
    const q = await pool.volumes.create({ name: "b.qcow2", capacityBytes: MiB(8), format: "qcow2", backing: { path: raw.path, format: "raw" } });
    expect(raw.path).toBe(join(poolDir, "a.raw"));
    expect(await q.info()).toMatchObject({ capacityBytes: MiB(8), format: "qcow2", backing: { path: raw.path, format: "raw" } });
    const qemu = JSON.parse(execFileSync("qemu-img", ["info", "-U", "--output=json", q.path], { encoding: "utf8" }));
    expect([qemu.format, qemu["virtual-size"], qemu["backing-filename"]]).toEqual(["qcow2", MiB(8), raw.path]);
    expect((await conn.volumes.lookup({ path: q.path })).name).toBe("b.qcow2");
    expect((await conn.volumes.lookup({ key: raw.key })).name).toBe("a.raw");
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["a.raw", "b.qcow2"]);
    await expect(pool.volumes.create({ name: "a.raw", capacityBytes: MiB(1) })).rejects.toBeInstanceOf(ConflictError);
    await raw.resize(MiB(6));
    expect((await raw.info()).capacityBytes).toBe(MiB(6));
    await expect(raw.allocate()).rejects.toBeInstanceOf(UnsupportedError);
    await expect((async () => {
      for await (const extent of raw.extents()) return extent;
    })()).rejects.toBeInstanceOf(UnsupportedError);
    await q.delete();
    await raw.delete();
    await expect(pool.volumes.get("a.raw")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("uploads and downloads over libvirt streams, byte for byte as virsh vol-download sees them", async () => {
    const vol = await pool.volumes.create({ name: "data.raw", capacityBytes: MiB(3), format: "raw" });
    const data = Buffer.alloc(MiB(3));
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32BE((i * 2654435761) >>> 0, i);
    const up = await vol.upload();
    const writer = up.writable.getWriter();
    for (let at = 0; at < data.length; at += 700_000) await writer.write(new Uint8Array(data.subarray(at, at + 700_000)));
    await writer.close();
    await up.wait();
    expect((await up.info()).cur).toBe(MiB(3));
    const out = join(daemon.dir, "virsh-download.raw");
    daemon.virsh(["vol-download", "--pool", "p1", "data.raw", out]);
    expect(readFileSync(out).equals(data)).toBe(true);
    const down = await vol.download();
    expect((await readAll(down.readable)).equals(data)).toBe(true);
    await down.wait();
    expect((await down.info()).state).toBe("completed");
    const part = await vol.download({ offset: MiB(1) + 5, length: 1000 });
    expect((await readAll(part.readable)).equals(data.subarray(MiB(1) + 5, MiB(1) + 1005))).toBe(true);
    await expect(vol.download({ offset: MiB(3), length: 1 })).rejects.toBeInstanceOf(RangeError);
  });

  it("creates thin volumes and clones sparsely: libvirt allocates nothing it was not asked to", async () => {
    const raw = await pool.volumes.create({ name: "thin.raw", capacityBytes: MiB(64), format: "raw" });
    // libvirt fills the whole capacity when <allocation> is left out (64 MiB on disk).
    expect((await raw.info()).allocationBytes).toBeLessThan(MiB(1));
    execFileSync("qemu-io", ["-f", "raw", "-c", "write -q -P 7 8M 1M", raw.path]);
    const job = await pool.volumes.clone(raw, { name: "thin-copy.raw" });
    const copy = await job.wait();
    execFileSync("qemu-img", ["compare", "-f", "raw", "-F", "raw", raw.path, copy.path]);
    expect((await copy.info()).allocationBytes).toBeLessThan(MiB(4));
    await copy.delete();
    await raw.delete();
  });

  it("downloads a sparse volume over a sparse stream: its holes read as zeros, at every offset, as virsh vol-download sees them", async () => {
    const vol = await pool.volumes.create({ name: "sparse.raw", capacityBytes: MiB(8), format: "raw" });
    execFileSync("qemu-io", ["-f", "raw", "-c", "write -q -P 7 1M 1M", "-c", "write -q -P 9 5632K 512K", vol.path]);
    const out = join(daemon.dir, "virsh-sparse.raw");
    daemon.virsh(["vol-download", "--pool", "p1", "sparse.raw", out]);
    const expected = readFileSync(out);
    expect(expected.subarray(MiB(1), MiB(2)).every((b) => b === 7) && expected[0] === 0 && expected[MiB(6) - 1] === 9).toBe(true);
    // A hole first, last and between; ranges that start and end inside a hole or inside data.
    for (const [offset, length] of [[0, MiB(8)], [MiB(1) - 4096, MiB(1) + 8192], [MiB(1) + 7, MiB(4) + 3], [MiB(6) - 1, MiB(2) + 1]] as const) {
      const job = await vol.download({ offset, length });
      const got = await readAll(job.readable);
      await job.wait();
      expect(got.equals(expected.subarray(offset, offset + length)), `${offset}+${length}`).toBe(true);
      expect((await job.info()).cur).toBe(length);
    }
    // Read through a BYOB reader with a small buffer: holes and data split across reads alike.
    const job = await vol.download();
    const reader = job.readable.getReader({ mode: "byob" });
    const parts: Buffer[] = [];
    let buffer = new ArrayBuffer(100_000);
    for (;;) {
      const { value, done } = await reader.read(new Uint8Array(buffer));
      if (done) break;
      parts.push(Buffer.from(value.slice()));
      buffer = value.buffer;
    }
    await job.wait();
    expect(Buffer.concat(parts).equals(expected)).toBe(true);
    await vol.delete();
  });

  it("paces a capped download at its cap", async () => {
    const vol = await pool.volumes.get("data.raw");
    const started = performance.now();
    const job = await vol.download({ length: MiB(1), bandwidth: MiB(4) });
    expect((await readAll(job.readable)).length).toBe(MiB(1));
    await job.wait();
    // 1 MiB at 4 MiB/s: about 250 ms (the limiter's first burst may shorten it a little).
    expect(performance.now() - started).toBeGreaterThan(120);
  });

  it("clones a volume as a volume-clone job through CREATE_XML_FROM", async () => {
    const source = await pool.volumes.get("data.raw");
    const job = await pool.volumes.clone(source, { name: "copy.raw" });
    expect(job.type).toBe("volume-clone");
    const copy = await job.wait();
    expect(copy.name).toBe("copy.raw");
    execFileSync("qemu-img", ["compare", "-f", "raw", "-F", "raw", source.path, copy.path]);
    await expect(pool.volumes.clone(source, { name: "capped.raw", bandwidth: MiB(1) })).rejects.toBeInstanceOf(UnsupportedError);
  });

  it("stops, deletes and undefines the pool", async () => {
    for (const v of await pool.volumes.list()) await v.delete();
    await pool.stop();
    expect((await pool.info()).state).toBe("inactive");
    await pool.delete();
    await pool.undefine();
    await expect(conn.pools.get("p1")).rejects.toBeInstanceOf(NotFoundError);
  });
});
