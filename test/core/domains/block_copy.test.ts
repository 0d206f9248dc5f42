import { describe, expect, it } from "vitest";
import { ConflictError, JobError, MiB, NotFoundError, StateError } from "../../../mod.ts";
import { CAPACITY, contentOf, hashOf, openChain, whenReady } from "./_chain_fixture.ts";
import { createRegistry } from "../../../core/registry.ts";
import { defineHypervisorDriver } from "../../../core/driver.ts";
import { parseUri } from "../../../core/uri.ts";
import { TestConnection } from "../../../drivers/test/connection.ts";
import { memoryBackend } from "../../../drivers/test/mod.ts";

describe("dom.blockCopy() on the test driver", () => {
  it("copies the flattened chain while the guest writes, is ready when in sync, mirrors writes in ready, and finalize() pivots", async () => {
    await using conn = await openChain("running");
    const dom = await conn.domains.get("web1");
    const pool = await conn.pools.get("p");
    const source = await pool.volumes.get("top.qcow2");
    const job = await dom.blockCopy("vda", { destination: { pool: "p", name: "copy.qcow2" }, granularityBytes: 4096 });
    expect(job.type).toBe("block-copy");
    expect(job.target).toMatchObject({ domain: "web1", disk: "vda" });
    // Written before the mirror is in sync: copied again by a dirty pass.
    await conn.testing!.guestWrite("web1", "vda", 100, new Uint8Array(10).fill(0x33));
    await whenReady(conn, job);
    const atReady = await job.info();
    expect(atReady.state).toBe("ready");
    expect(atReady.cur).toBe(atReady.end);
    expect(atReady.end).toBeGreaterThanOrEqual(CAPACITY);
    // Written in ready: mirrored at once, and cur and end move on together.
    await conn.testing!.guestWrite("web1", "vda", MiB(3), new Uint8Array(4096).fill(0x44));
    const later = await job.info();
    expect(later.end).toBe(atReady.end + 4096);
    expect(later.cur).toBe(later.end);
    await expect(job.dismiss()).rejects.toBeInstanceOf(StateError);
    await job.finalize();
    await job.wait();
    const copy = await pool.volumes.get("copy.qcow2");
    expect(await hashOf(copy)).toBe(await hashOf(source));
    expect((await job.info()).state).toBe("completed");
    const [vda] = await dom.disks();
    expect(vda?.volume).toEqual({ pool: "p", name: "copy.qcow2" });
    expect(vda?.backingChain).toEqual([]);
    expect((await dom.config()).disks[0]?.volume).toEqual({ pool: "p", name: "copy.qcow2" });
    const bytes = await contentOf(copy);
    expect([bytes[100], bytes[109], bytes[MiB(3)], bytes[MiB(1)], bytes[MiB(2) + 4096]]).toEqual([0x33, 0x33, 0x44, 0x11, 0x22]);
    expect(await dom.blockJob("vda")).toBeUndefined();
  });

  it("abort() in ready leaves the domain on its source and the destination a consistent copy", async () => {
    await using conn = await openChain("running");
    const dom = await conn.domains.get("web1");
    const pool = await conn.pools.get("p");
    const job = await dom.blockCopy("vda", { destination: { pool: "p", name: "copy.raw" }, format: "raw" });
    await whenReady(conn, job);
    await job.abort();
    await expect(job.wait()).rejects.toBeInstanceOf(JobError);
    expect((await job.info()).state).toBe("aborted");
    expect((await dom.disks())[0]?.volume?.name).toBe("top.qcow2");
    const copy = await pool.volumes.get("copy.raw");
    expect((await copy.info()).format).toBe("raw");
    const atAbort = await hashOf(copy);
    expect(atAbort).toBe(await hashOf(await pool.volumes.get("top.qcow2")));
    // The guest goes on writing to its source; the abandoned copy no longer follows.
    await conn.testing!.guestWrite("web1", "vda", 0, new Uint8Array(512).fill(9));
    expect(await hashOf(copy)).toBe(atAbort);
  });

  it("abort() before ready removes the destination it created", async () => {
    await using conn = await openChain("running");
    const dom = await conn.domains.get("web1");
    const pool = await conn.pools.get("p");
    const job = await dom.blockCopy("vda", { destination: { pool: "p", name: "copy.qcow2" }, bandwidth: MiB(1) });
    expect((await job.info()).state).toBe("running");
    await expect(job.finalize()).rejects.toBeInstanceOf(StateError);
    await job.abort();
    await expect(job.wait()).rejects.toBeInstanceOf(JobError);
    await expect(pool.volumes.get("copy.qcow2")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("abort() before ready keeps a destination given with reuseExisting", async () => {
    await using conn = await openChain("running");
    const dom = await conn.domains.get("web1");
    const pool = await conn.pools.get("p");
    await pool.volumes.create({ name: "spare.raw", capacityBytes: CAPACITY, format: "raw" });
    const job = await dom.blockCopy("vda", { destination: { pool: "p", name: "spare.raw" }, reuseExisting: true, bandwidth: MiB(1) });
    await job.abort();
    await expect(job.wait()).rejects.toBeInstanceOf(JobError);
    expect((await pool.volumes.get("spare.raw")).name).toBe("spare.raw");
  });

  it("shallow copies only the top image and keeps its backing", async () => {
    await using conn = await openChain("running");
    const dom = await conn.domains.get("web1");
    const pool = await conn.pools.get("p");
    const job = await dom.blockCopy("vda", { destination: { pool: "p", name: "shallow.qcow2" }, shallow: true });
    await whenReady(conn, job);
    await job.finalize();
    await job.wait();
    const shallow = await pool.volumes.get("shallow.qcow2");
    const mid = await pool.volumes.get("mid.qcow2");
    expect((await shallow.info()).backing?.path).toBe(mid.path);
    expect((await shallow.info()).allocationBytes).toBeLessThan(MiB(1));
    expect(await hashOf(shallow)).toBe(await hashOf(await pool.volumes.get("top.qcow2")));
    expect((await dom.disks())[0]?.backingChain.length).toBe(2);
  });

  it("on a shut-off domain is ready as soon as the copy is done, and finalize() switches the definition", async () => {
    await using conn = await openChain("shutoff");
    const dom = await conn.domains.get("web1");
    const job = await dom.blockCopy("vda", { destination: { pool: "p", name: "offline.qcow2" } });
    await whenReady(conn, job);
    await expect(conn.testing!.guestWrite("web1", "vda", 0, new Uint8Array(1))).rejects.toBeInstanceOf(StateError);
    await job.finalize();
    await job.wait();
    expect((await dom.disks())[0]?.volume?.name).toBe("offline.qcow2");
  });

  it("refuses a second job on the disk, naming the first, and an existing destination without reuseExisting", async () => {
    await using conn = await openChain("running");
    const dom = await conn.domains.get("web1");
    const pool = await conn.pools.get("p");
    const first = await dom.blockCopy("vda", { destination: { pool: "p", name: "c1.qcow2" }, bandwidth: MiB(1) });
    const second = await dom.blockCopy("vda", { destination: { pool: "p", name: "c2.qcow2" } }).catch((e) => e);
    expect(second).toBeInstanceOf(ConflictError);
    expect(second.jobId).toBe(first.id);
    expect(second.message).toContain(first.id);
    await expect(dom.blockCommit("vda")).rejects.toBeInstanceOf(ConflictError);
    await expect(dom.blockPull("vda")).rejects.toBeInstanceOf(ConflictError);
    await expect(pool.volumes.get("c2.qcow2")).rejects.toBeInstanceOf(NotFoundError);
    await first.abort();
    await expect(first.wait()).rejects.toBeInstanceOf(JobError);
    await expect(dom.blockCopy("vda", { destination: { pool: "p", name: "mid.qcow2" } })).rejects.toBeInstanceOf(ConflictError);
  });

  it.each([
    { what: "no destination", options: {}, error: TypeError },
    { what: "both pool and path", options: { destination: { pool: "p", name: "x", path: "/x" } }, error: TypeError },
    { what: "a bad format", options: { destination: { pool: "p", name: "x" }, format: "vmdk" }, error: TypeError },
    { what: "a granularity not a power of two", options: { destination: { pool: "p", name: "x" }, granularityBytes: 3000 }, error: RangeError },
    { what: "a granularity above 64 MiB", options: { destination: { pool: "p", name: "x" }, granularityBytes: MiB(128) }, error: RangeError },
    { what: "shallow that is not a boolean", options: { destination: { pool: "p", name: "x" }, shallow: "yes" }, error: TypeError },
    { what: "a negative bandwidth", options: { destination: { pool: "p", name: "x" }, bandwidth: -1 }, error: RangeError },
  ])("throws for $what before anything changes", async ({ options, error }) => {
    await using conn = await openChain("running");
    const dom = await conn.domains.get("web1");
    const pool = await conn.pools.get("p");
    const before = (await pool.volumes.list()).map((v) => v.name);
    await expect(dom.blockCopy("vda", options as never)).rejects.toBeInstanceOf(error);
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(before);
    expect(await conn.jobs.list()).toEqual([]);
  });
});

describe("an offline disk job raced by the domain's start", () => {
  it("is aborted and the caller gets a StateError, the disk free again", async () => {
    const registry = createRegistry();
    registry.register(memoryBackend);
    let calls = 0;
    registry.register(defineHypervisorDriver({
      name: "racy",
      schemes: ["racy"],
      async open(_uri, ctx) {
        const inner = await TestConnection.open(parseUri("test:///default"), ctx);
        await inner.destroyDomain("test");
        // Read 1: domains.get(); 2: core's check before the job; 3: its check after the offline job started.
        const domainInfo = inner.domainInfo.bind(inner);
        inner.domainInfo = async (name: string) => {
          if (++calls === 3) await inner.startDomain(name);
          return await domainInfo(name);
        };
        return inner;
      },
    }));
    await using conn = await registry.connect("racy:///x");
    const dom = await conn.domains.get("test");
    const error = await dom.blockPull("vda").catch((e) => e);
    expect(error).toBeInstanceOf(StateError);
    expect(error.message).toContain("started meanwhile");
    const [job] = await conn.jobs.list();
    expect((await job!.info()).state).toBe("aborted");
    expect(await dom.blockJob("vda")).toBeUndefined();
  });
});
