/**
 * The memory a socket reads into (`node:net`'s `onread` option): slabs read into one after another and
 * reused, instead of a fresh buffer per read that the garbage collector then has to reclaim (a 512 MiB
 * download made 8,192 of them).
 *
 * A receiver may keep views into a read past its call (a stream holding data for a slow reader) by
 * retaining the read's {@linkcode ChunkLease}: the slab it lies in is then not read into again until
 * every retained view was released. So stream data is copied once in user space, from the slab into
 * the reader's buffer, as libvirt's C client does, and not first into a frame buffer of its own.
 *
 * @module
 */
import type { ChunkLease } from "./channel.ts";

/** Default size of a slab: four of libvirt's 256 KiB data frames. */
export const RECEIVE_BUFFER_BYTES = 1024 * 1024;
/**
 * Released slabs kept for reuse by default (more are left to the garbage collector): enough for a
 * stream's high-water mark of held data (8 MiB) and the reads around it. With 4, a download into a file
 * (a reader slower than the socket) made 55-86 fresh slabs per 512 MiB, each new memory the kernel (and
 * on this VM's balloon, the host) had to fault in; with 12 it makes 8. The pool of frame buffers this
 * replaced kept 40 of 260 KiB, about as much.
 */
export const KEPT_SLABS = 12;
/**
 * A slab with less room than this (or a quarter of a small slab) left is not read into any further
 * while views into it are retained: the next read goes to another slab (a small read costs a system
 * call and a turn of the receive path).
 */
const MIN_READ_BYTES = 64 * 1024;

/** What slabs tell their buffer. */
interface SlabOwner {
  /** Retains not yet released, over all slabs. */
  retained: number;
  /** Takes back a slab nothing refers to any more. */
  recycle(slab: Slab): void;
}

/** One slab; as a lease, it counts the views retained into it. */
class Slab implements ChunkLease {
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** Bytes read into it so far (the next read goes after them). */
  fill = 0;
  /** Views retained and not yet released. */
  holds = 0;
  /** Whether the socket still reads into it. */
  current = true;
  readonly #owner: SlabOwner;

  constructor(bytes: number, owner: SlabOwner) {
    this.bytes = new Uint8Array(bytes);
    this.#owner = owner;
  }

  retain(): void {
    this.holds++;
    this.#owner.retained++;
  }

  release(): void {
    if (this.holds === 0) throw new Error("ReceiveBuffer: a slab was released more often than retained");
    this.#owner.retained--;
    if (--this.holds === 0 && !this.current) this.#owner.recycle(this);
  }
}

/**
 * Slabs a socket reads into: pass {@linkcode ReceiveBuffer.onread} to `net.createConnection()` and the
 * same object to `channelFromSocket`. Each read is handed on with the lease of its slab. While nothing
 * is retained the same slab is read into from its start again; with views retained, reads move on
 * through the slab, then to a released slab (at most `keptSlabs` are kept) or a new one.
 *
 * @example
 * ```ts
 * import { ReceiveBuffer } from "./receive_buffer.ts";
 * import type { ChunkLease } from "./channel.ts";
 * const reads = new ReceiveBuffer(64 * 1024);
 * let kept: { view: Uint8Array; lease: ChunkLease } | undefined;
 * reads.deliverTo((chunk, lease) => {
 *   lease!.retain();
 *   kept = { view: chunk, lease: lease! };
 * });
 * const socketRead = (byte: number) => {
 *   const into = reads.onread.buffer();
 *   into.fill(byte, 0, 3);
 *   reads.onread.callback(3, into);
 * };
 * socketRead(1);
 * const first = kept!;
 * socketRead(2); // `first` is retained: this read went elsewhere
 * if (first.view.join() !== "1,1,1" || kept!.view.join() !== "2,2,2") throw new Error("unexpected");
 * ```
 */
export class ReceiveBuffer {
  /** The `onread` option of `net.createConnection()`: `buffer()` is asked for the memory of each read. */
  readonly onread: { buffer(): Uint8Array; callback(bytes: number, buffer: Uint8Array): boolean };
  readonly #slabBytes: number;
  readonly #keptSlabs: number;
  readonly #free: Slab[] = [];
  #slab: Slab;
  #handler: ((chunk: Uint8Array, lease?: ChunkLease) => void) | undefined;
  /** Copies of what arrived before a receiver was set (a peer that speaks first). */
  #early: Uint8Array[] = [];
  #slabsMade = 1;
  readonly #owner: SlabOwner = {
    retained: 0,
    recycle: (slab) => {
      if (this.#free.length < this.#keptSlabs) this.#free.push(slab);
    },
  };

  /**
   * @param slabBytes Size of each slab: the most one read returns.
   * @param keptSlabs Released slabs kept for reuse.
   */
  constructor(slabBytes: number = RECEIVE_BUFFER_BYTES, keptSlabs: number = KEPT_SLABS) {
    if (!Number.isSafeInteger(slabBytes) || slabBytes < 1) throw new RangeError(`Invalid receive buffer size ${slabBytes}`);
    if (!Number.isSafeInteger(keptSlabs) || keptSlabs < 0) throw new RangeError(`Invalid number of kept slabs ${keptSlabs}`);
    this.#slabBytes = slabBytes;
    this.#keptSlabs = keptSlabs;
    this.#slab = new Slab(slabBytes, this.#owner);
    this.onread = {
      buffer: () => this.#next(),
      callback: (n, into) => {
        const slab = this.#slab;
        // Plain Uint8Array views (Node passes a Buffer back): code written for web bytes does not expect
        // a Buffer's slice() to share memory.
        let chunk: Uint8Array;
        let lease: ChunkLease | undefined;
        if (into.buffer === slab.bytes.buffer && into.byteOffset === slab.fill) {
          chunk = slab.bytes.subarray(slab.fill, slab.fill + n);
          slab.fill += n;
          lease = slab;
        } else {
          // Not the memory last handed out (no runtime does this today): valid only during the call.
          chunk = new Uint8Array(into.buffer, into.byteOffset, n);
        }
        if (this.#handler) this.#handler(chunk, lease);
        else this.#early.push(chunk.slice());
        return true;
      },
    };
  }

  /** Slabs allocated so far (the first included): how often the free list did not have one. */
  get slabsMade(): number {
    return this.#slabsMade;
  }

  /** Views retained into slabs and not yet released (0 once every receiver gave back what it kept). */
  get retainedViews(): number {
    return this.#owner.retained;
  }

  /** Released slabs waiting for reuse. */
  get freeSlabs(): number {
    return this.#free.length;
  }

  /**
   * Sets the receiver of each read. A chunk is valid only during the call unless the receiver retains
   * its lease (when there is one), and releases it once it no longer reads the chunk.
   *
   * @param handler The receiver.
   */
  deliverTo(handler: (chunk: Uint8Array, lease?: ChunkLease) => void): void {
    this.#handler = handler;
    const early = this.#early;
    this.#early = [];
    for (const chunk of early) handler(chunk);
  }

  /** The memory of the next read. */
  #next(): Uint8Array {
    let slab = this.#slab;
    if (slab.holds === 0) slab.fill = 0;
    else if (slab.bytes.length - slab.fill < Math.min(MIN_READ_BYTES, this.#slabBytes / 4)) {
      slab.current = false;
      slab = this.#free.pop() ?? this.#make();
      slab.current = true;
      slab.fill = 0;
      this.#slab = slab;
    }
    return slab.bytes.subarray(slab.fill);
  }

  #make(): Slab {
    this.#slabsMade++;
    return new Slab(this.#slabBytes, this.#owner);
  }
}
