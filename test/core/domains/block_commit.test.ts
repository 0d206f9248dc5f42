import { describe, expect, it } from "vitest";
import { ConflictError, connect, createVirtualClock, JobError, MiB, NotFoundError, StateError } from "../../../mod.ts";
import { contentOf, hashOf, openChain, whenReady } from "./_chain_fixture.ts";

describe("dom.blockCommit() on the test driver", () => {
  it("commits an intermediate image into its base in one phase and re-links the top to the base", async () => {
    await using conn = await openChain("running");
    const dom = await conn.domains.get("web1");
    const pool = await conn.pools.get("p");
    const top = await pool.volumes.get("top.qcow2");
    const base = await pool.volumes.get("base.raw");
    const before = await hashOf(top);
    const [vda] = await dom.disks();
    const mid = vda!.backingChain[0]!.path;
    const states: string[] = [];
    conn.events.on("job:state", (e) => states.push(e.job.state));
    const job = await dom.blockCommit("vda", { top: mid, base: "vda[2]", deleteCommitted: true });
    expect(job.type).toBe("block-commit");
    await job.wait();
    expect(states).not.toContain("ready");
    expect((await job.info()).state).toBe("completed");
    const [after] = await dom.disks();
    expect(after?.backingChain.map((l) => l.path)).toEqual([base.path]);
    expect(await hashOf(top)).toBe(before);
    // The base now holds the middle image's data; the middle image is gone.
    expect((await contentOf(base))[MiB(1)]).toBe(0x11);
    await expect(pool.volumes.get("mid.qcow2")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("an active commit is ready when in sync, mirrors guest writes, and finalize() pivots onto the base", async () => {
    await using conn = await openChain("running");
    const dom = await conn.domains.get("web1");
    const pool = await conn.pools.get("p");
    const job = await dom.blockCommit("vda", { base: "vda[1]" });
    await conn.testing!.guestWrite("web1", "vda", 8192, new Uint8Array(100).fill(0x66));
    await whenReady(conn, job);
    await conn.testing!.guestWrite("web1", "vda", MiB(3) + 512, new Uint8Array(512).fill(0x77));
    await job.finalize();
    await job.wait();
    // The top is left as it was at the pivot; the base now reads exactly like it.
    const expected = await hashOf(await pool.volumes.get("top.qcow2"));
    const [vda] = await dom.disks();
    expect(vda?.volume?.name).toBe("mid.qcow2");
    expect(vda?.backingChain.length).toBe(1);
    const mid = await pool.volumes.get("mid.qcow2");
    expect(await hashOf(mid)).toBe(expected);
    const bytes = await contentOf(mid);
    expect([bytes[8192], bytes[MiB(3) + 512], bytes[MiB(2) + 4096]]).toEqual([0x66, 0x77, 0x22]);
  });

  it("abort() of an active commit in ready leaves the top in use and the base holding the committed data", async () => {
    await using conn = await openChain("running");
    const dom = await conn.domains.get("web1");
    const pool = await conn.pools.get("p");
    const job = await dom.blockCommit("vda");
    await whenReady(conn, job);
    await job.abort();
    await expect(job.wait()).rejects.toBeInstanceOf(JobError);
    expect((await dom.disks())[0]?.volume?.name).toBe("top.qcow2");
    expect((await contentOf(await pool.volumes.get("base.raw")))[MiB(2) + 4096]).toBe(0x22);
  });

  it("on a shut-off domain an active commit completes after finalize() switches the definition to the base", async () => {
    await using conn = await openChain("shutoff");
    const dom = await conn.domains.get("web1");
    const pool = await conn.pools.get("p");
    const expected = await hashOf(await pool.volumes.get("top.qcow2"));
    const job = await dom.blockCommit("vda");
    await whenReady(conn, job);
    await job.finalize();
    await job.wait();
    expect((await dom.disks())[0]?.volume?.name).toBe("base.raw");
    expect(await hashOf(await pool.volumes.get("base.raw"))).toBe(expected);
  });

  it("refuses a top not in the chain, a base not below the top, and a top with nothing below, before anything changes", async () => {
    await using conn = await openChain("running");
    const dom = await conn.domains.get("web1");
    const [vda] = await dom.disks();
    const base = vda!.backingChain[1]!.path;
    await expect(dom.blockCommit("vda", { top: "/nowhere.qcow2" })).rejects.toBeInstanceOf(NotFoundError);
    await expect(dom.blockCommit("vda", { top: "vda[7]" })).rejects.toBeInstanceOf(NotFoundError);
    await expect(dom.blockCommit("vda", { top: "vda[1]", base: "vda[0]" })).rejects.toThrow(/is not below the top/);
    await expect(dom.blockCommit("vda", { top: "vda[1]", base: "vda[1]" })).rejects.toBeInstanceOf(TypeError);
    const raw = await dom.blockCommit("vda", { top: base }).catch((e) => e);
    expect(raw).toBeInstanceOf(TypeError);
    expect(raw.message).toContain("it is raw");
    await expect(dom.blockCommit("vda", { deleteCommitted: 1 as never })).rejects.toBeInstanceOf(TypeError);
    await expect(dom.blockCommit("vdz")).rejects.toBeInstanceOf(NotFoundError);
    expect(await conn.jobs.list()).toEqual([]);
    expect((await dom.disks())[0]).toEqual(vda);
  });

  it("finalize() outside ready is a StateError, and a second job on the disk a ConflictError", async () => {
    await using conn = await openChain("running");
    const dom = await conn.domains.get("web1");
    const job = await dom.blockCommit("vda", { bandwidth: MiB(1) });
    await expect(job.finalize()).rejects.toBeInstanceOf(StateError);
    const second = await dom.blockCommit("vda").catch((e) => e);
    expect(second).toBeInstanceOf(ConflictError);
    expect(second.jobId).toBe(job.id);
    await job.abort();
    await expect(job.wait()).rejects.toBeInstanceOf(JobError);
  });
});

describe("dom.blockCommit() chunks", () => {
  it("copies in 4 MiB chunks: a capped commit pays for 4 MiB before its first write, so progress moves in 4 MiB steps", async () => {
    const clock = createVirtualClock();
    await using conn = await connect("test:///empty", { clock });
    const image = (name: string, format: string, extra: object) => ({ name, capacityBytes: MiB(16), format, ...extra });
    await conn.testing!.load({
      pools: [{ name: "p", type: "memory", capacityBytes: MiB(64), volumes: [
        image("base.raw", "raw", { content: [] }),
        image("top.qcow2", "qcow2", { backing: { pool: "p", name: "base.raw" }, content: [{ offset: 0, length: MiB(8), fill: 0x22 }] }),
      ] }],
      domains: [{ name: "web1", vcpus: 1, memoryBytes: MiB(64), state: "shutoff", disks: [{ target: "vda", volume: { pool: "p", name: "top.qcow2" }, format: "qcow2" }] }],
    });
    const dom = await conn.domains.get("web1");
    // 8 MiB/s: a 1 MiB chunk is paid for after 125 ms, a 4 MiB one after 500 ms.
    const job = await dom.blockCommit("vda", { bandwidth: MiB(8) });
    await clock.advance(400);
    expect((await job.info()).cur).toBe(0);
    await clock.advance(200);
    expect((await job.info()).cur).toBe(MiB(4));
    await clock.advance(500);
    expect((await job.info()).cur).toBe(MiB(16));
    await whenReady(conn, job);
    await job.finalize();
    await job.wait();
    expect((await dom.disks())[0]?.volume?.name).toBe("base.raw");
    const download = await (await (await conn.pools.get("p")).volumes.get("base.raw")).download();
    const bytes = new Uint8Array(MiB(16));
    let at = 0;
    for await (const chunk of download.readable) bytes.set(chunk, (at += chunk.byteLength) - chunk.byteLength);
    await download.wait();
    expect([at, bytes[0], bytes[MiB(8) - 1], bytes[MiB(8)]]).toEqual([MiB(16), 0x22, 0x22, 0]);
  });
});
