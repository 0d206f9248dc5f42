/** Shared by the copy loop tests: the sparse in-memory source they copy, and a content comparison. */
import { MiB } from "../../../core/units.ts";
import { MemoryVolumeStore } from "../../../drivers/test/memory_volume.ts";

/** A source with random data in [0, 2 MiB) and [4 MiB, 5 MiB), an allocated all-zero MiB at 6 MiB, holes elsewhere. */
export function sparseSource(capacityBytes = MiB(8), seed = 11): MemoryVolumeStore {
  const content = new MemoryVolumeStore({ capacityBytes, pattern: { kind: "random", seed } });
  const store = new MemoryVolumeStore({ name: "src", capacityBytes });
  const bytes = new Uint8Array(MiB(1));
  for (const at of [0, MiB(1), MiB(4)]) {
    content.readAt(at, bytes);
    store.writeAt(at, bytes);
  }
  store.writeAt(MiB(6), new Uint8Array(MiB(1)));
  return store;
}

/** Whether `a[offset, offset + length)` equals `b[bOffset, bOffset + length)`. */
export function sameContent(a: MemoryVolumeStore, b: MemoryVolumeStore, offset = 0, length = a.capacityBytes, bOffset = offset): boolean {
  const x = new Uint8Array(length);
  const y = new Uint8Array(length);
  a.readAt(offset, x);
  b.readAt(bOffset, y);
  return x.every((v, i) => v === y[i]);
}
