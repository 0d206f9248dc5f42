/**
 * Builds the store of a fixture volume from its content runs without spending memory on synthetic data:
 * a raw volume whose runs are mostly `"random"` becomes a patterned store (all data, no memory) with
 * zero marks where the holes are, and only runs that differ from the pattern are written as bytes.
 *
 * @module
 */
import type { BackingRef } from "../../core/volume.ts";
import type { FixtureContent } from "./fixture.ts";
import { type MemoryPattern, MemoryVolumeStore } from "./memory_volume.ts";

const CHUNK_BYTES = 1024 * 1024;

/** What {@linkcode createContentStore} builds. */
export interface ContentStoreSpec {
  /** Name used in the store's error messages. */
  name: string;
  /** Virtual size in bytes. */
  capacityBytes: number;
  /** The backing image recorded in the volume, with its store. */
  backing?: { ref: BackingRef; store: MemoryVolumeStore };
  /** Finds a store by backing reference, for later `setBacking` calls. */
  resolveBacking: (ref: BackingRef) => MemoryVolumeStore;
  /** Content runs, applied in order; what no run covers is a hole. */
  content?: readonly FixtureContent[];
}

/** Ranges `[start, end)` of `[0, capacity)` that no run covers. */
function holes(capacityBytes: number, runs: readonly FixtureContent[]): Array<[number, number]> {
  const sorted = runs.filter((r) => r.length > 0).map((r) => [r.offset, r.offset + r.length] as const).sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  let at = 0;
  for (const [start, end] of sorted) {
    if (start > at) out.push([at, start]);
    at = Math.max(at, end);
  }
  if (at < capacityBytes) out.push([at, capacityBytes]);
  return out;
}

function overlaps(a: FixtureContent, b: FixtureContent): boolean {
  return a.offset < b.offset + b.length && b.offset < a.offset + a.length;
}

/** Writes a run as bytes: a fill byte, or the bytes a store patterned with the run's seed shows there. */
function writeRun(store: MemoryVolumeStore, run: FixtureContent): void {
  if (run.fill === 0) return store.writeZeroesAt(run.offset, run.length);
  const source = run.fill === "random"
    ? new MemoryVolumeStore({ capacityBytes: store.capacityBytes, pattern: { kind: "random", seed: run.seed ?? 0 } })
    : undefined;
  const chunk = new Uint8Array(Math.min(CHUNK_BYTES, run.length));
  if (typeof run.fill === "number") chunk.fill(run.fill);
  for (let at = run.offset, end = run.offset + run.length; at < end; at += chunk.byteLength) {
    const view = chunk.subarray(0, Math.min(chunk.byteLength, end - at));
    source?.readAt(at, view);
    store.writeAt(at, view);
  }
}

/**
 * Creates a volume's store with its content. A `"random"` run reads the same bytes at the same offset
 * whatever volume it is in, so a fixture can describe a copy of a template by giving the same seed.
 *
 * @param spec Size, backing and content.
 * @returns The store.
 * @example A 1 GiB template full of data that takes no memory
 * ```ts
 * import { createContentStore } from "./volume_content.ts";
 * const GiB = 1024 ** 3;
 * const store = createContentStore({
 *   name: "base.img", capacityBytes: GiB, resolveBacking: () => { throw new Error("no backing"); },
 *   content: [{ offset: 0, length: GiB, fill: "random", seed: 7 }],
 * });
 * if (store.allocationBytes !== GiB || store.memoryBytes !== 0) throw new Error("unexpected");
 * ```
 */
export function createContentStore(spec: ContentStoreSpec): MemoryVolumeStore {
  const runs = spec.content ?? [];
  const first = spec.backing ? undefined : runs.find((r) => r.fill === "random" && r.length > 0);
  const pattern: MemoryPattern | undefined = first ? { kind: "random", seed: first.seed ?? 0 } : undefined;
  const store = new MemoryVolumeStore({
    name: spec.name,
    capacityBytes: spec.capacityBytes,
    resolveBacking: spec.resolveBacking,
    ...(pattern ? { pattern } : {}),
    ...(spec.backing ? { backing: spec.backing.ref, backingStore: spec.backing.store } : {}),
  });
  if (pattern) for (const [start, end] of holes(spec.capacityBytes, runs)) store.writeZeroesAt(start, end - start);
  runs.forEach((run, i) => {
    const showsPattern = pattern && run.fill === "random" && (run.seed ?? 0) === pattern.seed;
    // A run equal to the pattern costs nothing, unless an earlier run wrote over part of it.
    if (showsPattern && !runs.slice(0, i).some((earlier) => overlaps(earlier, run))) return;
    writeRun(store, run);
  });
  return store;
}
