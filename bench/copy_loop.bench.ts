/**
 * The copy loop against plain references (design §10): `copyExtents` between two in-memory volumes of
 * 256 MiB of data, next to (a) a bare loop doing one `Uint8Array.set` per chunk between two flat
 * buffers (a memcpy lower bound) and (b) the same loop going through one reusable chunk buffer, which
 * makes the two copies per byte that a read-then-write loop makes, and (c) a plain loop awaiting
 * `read` then `write` on the same two volumes (so the ratio to it is the loop's own overhead). A sparse
 * source (half holes) is measured too, against (b) over its data only.
 *
 * @module
 */
import { copyExtents } from "../core/copy/copy_loop.ts";
import type { Extent } from "../core/volume.ts";
import { MiB } from "../core/units.ts";
import { MemoryVolumeStore } from "../drivers/test/memory_volume.ts";

const SIZE = MiB(256);
const CHUNK = MiB(1);
const ROUNDS = 7;
const dataOrSkip = (e: Extent): "copy" | "skip" => (e.data ? "copy" : "skip");

/**
 * Runs the copy loop benchmarks and prints each figure next to its references, with the ratios.
 *
 * @example
 * ```ts
 * import { run } from "./copy_loop.bench.ts";
 * await run();
 * ```
 */
export async function run(): Promise<void> {
  console.log(`copy loop (${SIZE / MiB(1)} MiB, ${CHUNK / MiB(1)} MiB chunks, best of ${ROUNDS})`);
  const { store: dense, flat } = filledStore(false);
  const target = new MemoryVolumeStore({ capacityBytes: SIZE });
  const flatTarget = new Uint8Array(SIZE);
  const chunk = new Uint8Array(CHUNK);

  const bare = best(() => {
    for (let at = 0; at < SIZE; at += CHUNK) flatTarget.set(flat.subarray(at, at + CHUNK), at);
  });
  const buffered = best(() => {
    for (let at = 0; at < SIZE; at += CHUNK) {
      chunk.set(flat.subarray(at, at + CHUNK));
      flatTarget.set(chunk, at);
    }
  });
  const loop = await bestAsync(() => copy(dense, target));
  if (!same(dense, target)) throw new Error("copy loop produced different bytes");
  const from = dense.open({ write: false });
  const to = target.open({ write: true });
  const handles = await bestAsync(async () => {
    for (let at = 0; at < SIZE; at += CHUNK) {
      await from.read(at, chunk);
      await to.write(at, chunk);
    }
  });
  const rate = (ms: number) => SIZE / MiB(1) / (ms / 1000);
  console.log(`  all data:   copyExtents ${fmt(rate(loop))} MiB/s   (a) bare set ${fmt(rate(bare))} MiB/s` +
    `   (b) set via buffer ${fmt(rate(buffered))} MiB/s   (c) read/write loop ${fmt(rate(handles))} MiB/s`);
  console.log(`              copyExtents / (a) ${(bare / loop).toFixed(2)}x   / (b) ${(buffered / loop).toFixed(2)}x` +
    `   / (c) ${(handles / loop).toFixed(2)}x`);

  const { store: sparse, flat: sparseFlat } = filledStore(true);
  const sparseTarget = new MemoryVolumeStore({ capacityBytes: SIZE });
  const sparseRef = best(() => {
    for (let at = 0; at < SIZE; at += 2 * CHUNK) {
      chunk.set(sparseFlat.subarray(at, at + CHUNK));
      flatTarget.set(chunk, at);
    }
  });
  const sparseLoop = await bestAsync(() => copy(sparse, sparseTarget));
  if (!same(sparse, sparseTarget) || sparseTarget.allocationBytes !== SIZE / 2) throw new Error("sparse copy is wrong");
  console.log(`  half holes: copyExtents ${fmt(rate(sparseLoop))} MiB/s of virtual size   read+write of the data only ` +
    `${fmt(rate(sparseRef))} MiB/s   ratio ${(sparseRef / sparseLoop).toFixed(2)}x   target allocation ${sparseTarget.allocationBytes / MiB(1)} MiB`);
}

function copy(source: MemoryVolumeStore, target: MemoryVolumeStore): Promise<unknown> {
  return copyExtents({
    source: source.open({ write: false }),
    target: target.open({ write: true }),
    length: SIZE,
    plan: dataOrSkip,
    zeroChunks: "skip",
    chunkBytes: CHUNK,
  });
}

/** A store full of random data (or with every other MiB a hole), and the same bytes as one flat array. */
function filledStore(sparse: boolean): { store: MemoryVolumeStore; flat: Uint8Array } {
  const pattern = new MemoryVolumeStore({ capacityBytes: SIZE, pattern: { kind: "random", seed: 5 } });
  const store = new MemoryVolumeStore({ capacityBytes: SIZE });
  const flat = new Uint8Array(SIZE);
  for (let at = 0; at < SIZE; at += sparse ? 2 * CHUNK : CHUNK) {
    const view = flat.subarray(at, at + CHUNK);
    pattern.readAt(at, view);
    store.writeAt(at, view);
  }
  return { store, flat };
}

function same(a: MemoryVolumeStore, b: MemoryVolumeStore): boolean {
  const x = new Uint8Array(CHUNK);
  const y = new Uint8Array(CHUNK);
  for (let at = 0; at < SIZE; at += CHUNK) {
    a.readAt(at, x);
    b.readAt(at, y);
    for (let i = 0; i < CHUNK; i += 4093) if (x[i] !== y[i]) return false;
  }
  return true;
}

function best(fn: () => void): number {
  let ms = Infinity;
  for (let i = 0; i < ROUNDS; i++) {
    const start = performance.now();
    fn();
    ms = Math.min(ms, performance.now() - start);
  }
  return ms;
}

async function bestAsync(fn: () => Promise<unknown>): Promise<number> {
  let ms = Infinity;
  for (let i = 0; i < ROUNDS; i++) {
    const start = performance.now();
    await fn();
    ms = Math.min(ms, performance.now() - start);
  }
  return ms;
}

const fmt = (n: number): string => n.toFixed(0).padStart(6);
