import { describe, expect, it } from "vitest";
import { connect, createVirtualClock, MiB } from "../../../mod.ts";
import type { Connection } from "../../../core/connection.ts";
import type { Job } from "../../../core/job.ts";
import { CAPACITY, chainFixture, contentOf, whenReady } from "../../core/domains/_chain_fixture.ts";

/**
 * `conn.testing.guestWrite()` racing the `test` driver's live block jobs, on the virtual clock: a capped
 * job is held back by its cap, so a write lands while the job is at a known point, as on QEMU.
 */
async function runningChain(): Promise<{ conn: Connection; clock: ReturnType<typeof createVirtualClock> }> {
  const clock = createVirtualClock();
  const conn = await connect("test:///empty", { clock });
  await conn.testing!.load(chainFixture("running"));
  return { conn, clock };
}

/** Advances the clock until the job reaches one of `states` (a deadline in virtual time, no sleeps). */
async function advanceUntil(clock: ReturnType<typeof createVirtualClock>, job: Job, states: string[]): Promise<void> {
  for (let ms = 0; ms < 60_000; ms += 100) {
    if (states.includes((await job.info()).state)) return;
    await clock.advance(100);
  }
  throw new Error(`job ${job.id} did not reach ${states.join("/")} in 60 virtual seconds`);
}

/** A guest write at `offset` in the disk and in the model of what the guest sees. */
async function write(conn: Connection, model: Uint8Array, offset: number, length: number, value: number): Promise<void> {
  const bytes = new Uint8Array(length).fill(value);
  await conn.testing!.guestWrite("web1", "vda", offset, bytes);
  model.set(bytes, offset);
}

const firstDifference = (a: Uint8Array, b: Uint8Array) => {
  if (a.byteLength !== b.byteLength) return Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return i;
  return -1;
};

describe("guest writes during the test driver's live block jobs", () => {
  it("a pull never overwrites what the guest wrote into the top, ahead of it or behind it", async () => {
    const { conn, clock } = await runningChain();
    await using _ = conn;
    const dom = await conn.domains.get("web1");
    const top = await (await conn.pools.get("p")).volumes.get("top.qcow2");
    const model = await contentOf(top);
    const job = await dom.blockPull("vda", { bandwidth: MiB(1) });
    // Ahead of the pull (its plan was made at the start): the pull's copy of the backing must not land on it.
    await write(conn, model, MiB(2) + MiB(1) / 2, 8192, 0x5a);
    await clock.advance(1500);
    // Paused, the pull stops at its next checkpoint, which is between reading a chunk and writing it:
    // a guest write into that chunk now is the race QEMU's copy-on-read resolves for the guest.
    await job.pause();
    await clock.advance(2000);
    const { cur, state } = await job.info();
    expect(state).toBe("paused");
    expect(cur).toBeGreaterThan(0);
    expect(cur).toBeLessThan(MiB(3));
    await write(conn, model, cur + 512, 4096, 0x7c);
    // Behind it, while it runs.
    await write(conn, model, 4096, 100, 0x6b);
    await job.resume();
    await advanceUntil(clock, job, ["completed", "failed"]);
    await job.wait();
    const [vda] = await dom.disks();
    expect(vda?.backingChain).toEqual([]);
    const after = await contentOf(top);
    expect(firstDifference(after, model)).toBe(-1);
    expect([after[MiB(2) + MiB(1) / 2], after[4096], after[cur + 512]]).toEqual([0x5a, 0x6b, 0x7c]);
  });

  it("a copy sees writes before ready (copied again), in ready (mirrored) and racing finalize(): the destination equals the disk", async () => {
    const { conn, clock } = await runningChain();
    await using _ = conn;
    const dom = await conn.domains.get("web1");
    const pool = await conn.pools.get("p");
    const model = await contentOf(await pool.volumes.get("top.qcow2"));
    const job = await dom.blockCopy("vda", { destination: { pool: "p", name: "copy.qcow2" }, bandwidth: MiB(1), granularityBytes: 4096 });
    await clock.advance(1500);
    const { cur } = await job.info();
    expect(cur).toBeGreaterThan(0);
    // Behind the bulk copy (only a dirty pass copies it) and ahead of it.
    await write(conn, model, 0, 300, 0x11);
    await write(conn, model, CAPACITY - 4096, 4096, 0x12);
    await advanceUntil(clock, job, ["ready"]);
    await write(conn, model, MiB(1) + 7, 9, 0x13);
    // A write the guest issues as the pivot starts lands wholly before it (mirrored) or after it (in the copy).
    const racing = write(conn, model, MiB(2), 65536, 0x14);
    await job.finalize();
    await racing;
    await job.wait();
    expect((await dom.disks())[0]?.volume?.name).toBe("copy.qcow2");
    await write(conn, model, MiB(3), 512, 0x15);
    const copy = await contentOf(await pool.volumes.get("copy.qcow2"));
    expect(firstDifference(copy, model)).toBe(-1);
    expect([copy[0], copy[CAPACITY - 1], copy[MiB(1) + 7], copy[MiB(2)], copy[MiB(3)]]).toEqual([0x11, 0x12, 0x13, 0x14, 0x15]);
  });

  it("an active commit sees the guest's writes likewise: after the pivot the base reads as the disk did", async () => {
    const { conn, clock } = await runningChain();
    await using _ = conn;
    const dom = await conn.domains.get("web1");
    const pool = await conn.pools.get("p");
    const model = await contentOf(await pool.volumes.get("top.qcow2"));
    const job = await dom.blockCommit("vda", { bandwidth: MiB(1) });
    await clock.advance(500);
    await write(conn, model, 0, 4096, 0x21);
    await write(conn, model, MiB(2) + 8192, 100, 0x22);
    await advanceUntil(clock, job, ["ready"]);
    await write(conn, model, MiB(3) + 1, 1, 0x23);
    const racing = write(conn, model, 65536, 4096, 0x24);
    await job.finalize();
    await racing;
    await job.wait();
    expect((await dom.disks())[0]?.volume?.name).toBe("base.raw");
    const base = await contentOf(await pool.volumes.get("base.raw"));
    expect(firstDifference(base, model)).toBe(-1);
    expect([base[0], base[MiB(2) + 8192], base[MiB(3) + 1], base[65536]]).toEqual([0x21, 0x22, 0x23, 0x24]);
  });
});
