/**
 * An in-memory, sparse {@linkcode PositionalFile}: tests and the `test` driver use it where the `dir`
 * backend uses real files.
 *
 * @module
 */
import type { PositionalFile } from "./positional_file.ts";

const PAGE_BYTES = 65536;

/** A {@linkcode PositionalFile} in memory, with a way to see how much of it is really stored. */
export interface MemoryFile extends PositionalFile {
  /** Bytes held in memory (pages ever written, 64 KiB each). */
  storedBytes(): number;
  /** How many times `flush()` was called (tests check write ordering with it). */
  readonly flushCount: number;
}

/**
 * Creates an empty sparse in-memory file. Unwritten ranges read as zeros and cost no memory.
 *
 * @param initial Optional initial content.
 * @returns The open file.
 * @example
 * ```ts
 * import { createMemoryFile } from "virtkit";
 * const file = createMemoryFile();
 * await file.write(1 << 20, new Uint8Array([7]));
 * const byte = new Uint8Array(1);
 * await file.read(1 << 20, byte);
 * if (byte[0] !== 7 || (await file.size()) !== (1 << 20) + 1) throw new Error("unexpected");
 * ```
 */
export function createMemoryFile(initial?: Uint8Array): MemoryFile {
  const pages = new Map<number, Uint8Array>();
  let sizeBytes = 0;
  let closed = false;
  let flushCount = 0;
  const open = (): void => {
    if (closed) throw new Error("Memory file is closed");
  };
  // Every method reports failures as rejections, never synchronous throws, like a real file.
  const guard = <A extends unknown[], R>(fn: (...args: A) => R) => (...args: A): Promise<Awaited<R>> => {
    try {
      return Promise.resolve(fn(...args)) as Promise<Awaited<R>>;
    } catch (error) {
      return Promise.reject(error);
    }
  };
  const check = (offset: number): void => {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`Invalid file offset ${offset}`);
  };
  const writeSync = (offset: number, data: Uint8Array): void => {
    for (let done = 0; done < data.byteLength; ) {
      const at = offset + done;
      const index = Math.floor(at / PAGE_BYTES);
      const within = at % PAGE_BYTES;
      const n = Math.min(PAGE_BYTES - within, data.byteLength - done);
      let page = pages.get(index);
      if (!page) pages.set(index, (page = new Uint8Array(PAGE_BYTES)));
      page.set(data.subarray(done, done + n), within);
      done += n;
    }
    sizeBytes = Math.max(sizeBytes, offset + data.byteLength);
  };
  if (initial) writeSync(0, initial);
  return {
    get flushCount() {
      return flushCount;
    },
    storedBytes: () => pages.size * PAGE_BYTES,
    read: guard((offset: number, target: Uint8Array) => {
      open();
      check(offset);
      const end = Math.min(sizeBytes, offset + target.byteLength);
      for (let at = offset; at < end; ) {
        const index = Math.floor(at / PAGE_BYTES);
        const within = at % PAGE_BYTES;
        const n = Math.min(PAGE_BYTES - within, end - at);
        const page = pages.get(index);
        if (page) target.set(page.subarray(within, within + n), at - offset);
        else target.fill(0, at - offset, at - offset + n);
        at += n;
      }
      return Math.max(0, end - offset);
    }),
    write: guard((offset: number, data: Uint8Array) => {
      open();
      check(offset);
      writeSync(offset, data);
    }),
    size: guard(() => {
      open();
      return sizeBytes;
    }),
    truncate: guard((newSize: number) => {
      open();
      check(newSize);
      if (newSize < sizeBytes) {
        for (const index of [...pages.keys()]) {
          if (index * PAGE_BYTES >= newSize) pages.delete(index);
        }
        const tail = pages.get(Math.floor(newSize / PAGE_BYTES));
        tail?.fill(0, newSize % PAGE_BYTES);
      }
      sizeBytes = newSize;
    }),
    flush: guard(() => {
      open();
      flushCount++;
    }),
    close() {
      closed = true;
      pages.clear();
      return Promise.resolve();
    },
  };
}
