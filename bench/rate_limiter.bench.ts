/**
 * Capped throughput against the cap (design §10), on the real clock: a bare consumer taking 256 KiB
 * pieces from a `RateLimiter`, and `copyExtents` from a patterned volume into a null sink, each held
 * for at least 2 s at 8, 64 and 256 MiB/s. Prints the achieved rate next to the cap and the error.
 *
 * @module
 */
import { createRealClock } from "../core/clock.ts";
import { copyExtents } from "../core/copy/copy_loop.ts";
import { RateLimiter } from "../core/copy/rate_limiter.ts";
import type { VolumeIO } from "../core/volume_io.ts";
import { KiB, MiB } from "../core/units.ts";
import { MemoryVolumeStore } from "../drivers/test/memory_volume.ts";

const CAPS = [MiB(8), MiB(64), MiB(256)];
const SECONDS = 2;
const PIECE = KiB(256);

/**
 * Runs the rate limiter benchmarks and prints achieved rates next to the caps.
 *
 * @example
 * ```ts
 * import { run } from "./rate_limiter.bench.ts";
 * await run();
 * ```
 */
export async function run(): Promise<void> {
  console.log(`rate limiter on the real clock (${SECONDS} s per cap)`);
  for (const cap of CAPS) {
    const bare = await bareTakes(cap);
    const copy = await cappedCopy(cap);
    console.log(`  cap ${pad(cap / MiB(1))} MiB/s:  bare takes ${report(bare, cap)}   copyExtents ${report(copy, cap)}`);
  }
}

/** Takes 256 KiB pieces back to back until the cap's worth of SECONDS has passed; returns bytes/s. */
async function bareTakes(cap: number): Promise<number> {
  const clock = createRealClock();
  const limiter = new RateLimiter({ bytesPerSecond: cap, clock });
  const total = cap * SECONDS;
  const start = clock.now();
  for (let passed = 0; passed < total; passed += PIECE) await limiter.take(PIECE);
  return total / ((clock.now() - start) / 1000);
}

/** Copies SECONDS worth of the cap from a patterned volume into a sink that drops the bytes; returns bytes/s. */
async function cappedCopy(cap: number): Promise<number> {
  const clock = createRealClock();
  const limiter = new RateLimiter({ bytesPerSecond: cap, clock });
  const length = cap * SECONDS;
  const source = new MemoryVolumeStore({ capacityBytes: length, pattern: { kind: "random", seed: 1 } });
  let written = 0;
  const sink: Pick<VolumeIO, "write" | "writeZeroes"> = {
    write: async (_offset, data) => void (written += data.byteLength),
    writeZeroes: async () => {},
  };
  const start = clock.now();
  await copyExtents({ source: source.open({ write: false }), target: sink, length, plan: () => "copy", zeroChunks: "write", limiter });
  const elapsed = (clock.now() - start) / 1000;
  if (written !== length) throw new Error(`copied ${written} of ${length} bytes`);
  return length / elapsed;
}

function report(achieved: number, cap: number): string {
  const error = ((achieved - cap) / cap) * 100;
  return `${(achieved / MiB(1)).toFixed(2).padStart(7)} MiB/s (${error >= 0 ? "+" : ""}${error.toFixed(2)} %)`;
}

const pad = (n: number): string => String(n).padStart(3);
