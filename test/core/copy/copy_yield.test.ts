/**
 * A long copy between in-memory volumes (every await resolves at once) gives the event loop a turn
 * every 32 MiB, so timers and other clients run while it copies; on a virtual clock the turns change
 * nothing: a capped copy still reaches each point, and its end, at exactly the virtual time the cap says.
 */
import { describe, expect, it } from "vitest";
import { copyExtents } from "../../../core/copy/copy_loop.ts";
import { RateLimiter } from "../../../core/copy/rate_limiter.ts";
import { createVirtualClock } from "../../../core/clock.ts";
import { MiB } from "../../../core/units.ts";
import { connect } from "../../../mod.ts";
import { MemoryVolumeStore } from "../../../drivers/test/memory_volume.ts";

const SIZE = MiB(128);

function patterned(capacityBytes = SIZE): MemoryVolumeStore {
  return new MemoryVolumeStore({ capacityBytes, pattern: { kind: "fill", byte: 7 } });
}

/** Another client: counts the macrotask turns it gets until stopped. */
function otherClient(): { turns: () => number; stop: () => void } {
  let turns = 0;
  let stopped = false;
  const loop = () => {
    if (stopped) return;
    turns++;
    setTimeout(loop, 0);
  };
  setTimeout(loop, 0);
  return { turns: () => turns, stop: () => void (stopped = true) };
}

describe("the copy loop and the event loop", () => {
  it("lets timers run while a large in-memory copy is in progress", async () => {
    const source = patterned();
    const target = new MemoryVolumeStore({ capacityBytes: SIZE });
    const seenAt: number[] = [];
    let cur = 0;
    const client = otherClient();
    const timer = setInterval(() => seenAt.push(cur), 0);
    try {
      await copyExtents({
        source: source.open({ write: false }),
        target: target.open({ write: true }),
        length: SIZE,
        plan: () => "copy",
        onProgress: (c) => { cur = c; },
      });
    } finally {
      clearInterval(timer);
      client.stop();
    }
    // Without turns, neither the interval nor the other client runs before the copy has ended.
    expect(seenAt.filter((c) => c < SIZE).length).toBeGreaterThan(0);
    expect(client.turns()).toBeGreaterThan(0);
    expect(target.allocationBytes).toBe(SIZE);
  });

  /**
   * A 96 MiB copy capped at 32 MiB/s on a virtual clock: its progress, and the virtual time it ended.
   * With `slowReadMs`, each read also takes that much real time (synchronously, as a busy CPU would),
   * so a 0 ms timer set when a chunk's tokens came is due before the copy's own turn.
   */
  function cappedCopy(slowReadMs = 0) {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: MiB(32), clock });
    const store = patterned(MiB(96)).open({ write: false });
    const source = {
      extents: store.extents.bind(store),
      read(offset: number, buffer: Uint8Array) {
        for (const start = performance.now(); performance.now() - start < slowReadMs;) { /* the CPU is busy */ }
        return store.read(offset, buffer);
      },
    };
    const target = new MemoryVolumeStore({ capacityBytes: MiB(96) });
    const state = { cur: 0, finishedAt: undefined as number | undefined };
    const done = copyExtents({
      source,
      target: target.open({ write: true }),
      length: MiB(96),
      plan: () => "copy",
      limiter,
      onProgress: (c) => { state.cur = c; },
    }).then(() => (state.finishedAt = clock.now()));
    return { clock, state, done };
  }

  it("keeps a capped copy on a virtual clock exact: the same progress at the same virtual times, turns or not", async () => {
    const { clock, state, done } = cappedCopy();
    const seen: number[] = [];
    for (let t = 0; t < 3000; t += 250) {
      await clock.advance(250);
      seen.push(state.cur / MiB(1));
    }
    await done;
    // 32 MiB per virtual second, in 1 MiB chunks (each paid before it is read), across the turns at 32 and 64 MiB.
    expect(seen).toEqual([8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96]);
    expect(state.finishedAt).toBe(3000);
    expect(clock.pendingTimers).toBe(0);
  });

  it("ends a capped copy at the exact virtual time in one long advance: the clock waits for the copy's turns", async () => {
    const { clock, state, done } = cappedCopy(2);
    await clock.advance(3000);
    // A clock that moved on while the copy waited for its turn would have let it pay at 3000 ms for a
    // chunk due at 1000 ms, and end 2 s late.
    expect([state.cur, state.finishedAt]).toEqual([MiB(96), 3000]);
    await done;
  });

  it("lets an advance settle an uncapped in-memory copy it woke to its end, turns and all", async () => {
    const clock = createVirtualClock();
    const limiter = new RateLimiter({ bytesPerSecond: 0, clock });
    const target = new MemoryVolumeStore({ capacityBytes: SIZE });
    let ended = false;
    const done = clock.sleep(10).then(() =>
      copyExtents({ source: patterned().open({ write: false }), target: target.open({ write: true }), length: SIZE, plan: () => "copy", limiter })
    ).then(() => (ended = true));
    await clock.advance(10);
    // Four turns on the way (every 32 MiB): the clock took them all before it returned.
    expect(ended).toBe(true);
    await done;
  });

  it("on the test driver, an in-memory job leaves other async work its turns", async () => {
    await using conn = await connect("test:///default");
    const pool = await conn.pools.get("default-pool");
    const vol = await pool.volumes.create({ name: "big.img", capacityBytes: MiB(256) });
    const client = otherClient();
    let turnsWhileRunning = -1;
    const off = conn.events.on("job:completed", () => {
      turnsWhileRunning = client.turns();
    });
    const job = await vol.allocate();
    try {
      await job.wait();
    } finally {
      off();
      client.stop();
    }
    expect((await job.info()).state).toBe("completed");
    expect(turnsWhileRunning).toBeGreaterThan(0);
  });
});
