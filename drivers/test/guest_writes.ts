/**
 * Simulated guest writes on the `test` driver (`conn.testing.guestWrite()`): the bytes land in the disk's
 * active volume, and a block copy or active commit running on that disk sees them as QEMU's mirror sees
 * a guest's writes: dirty before `ready`, mirrored at once in `ready`. Users' tests drive a copy with
 * them, to test code that waits for `ready` and then pivots.
 *
 * @module
 */
import type { StorageAccess } from "../../core/storage_backend.ts";
import { NotFoundError, StateError } from "../../core/errors.ts";
import { diskLockKey } from "../../core/domains/disk_lock.ts";
import { requireDiskVolume } from "../../core/domains/disk_volume.ts";
import type { GuestWriteSource } from "../../core/domains/mirror.ts";
import type { DomainTable } from "./domains.ts";

type Listener = (offset: number, data: Uint8Array) => Promise<void>;

/**
 * The guest writes of one `test:` connection.
 *
 * @example
 * ```ts
 * import { connect } from "virtkit";
 * await using conn = await connect("test:///default");
 * await conn.testing!.guestWrite("test", "vda", 512, new Uint8Array([7, 7]));
 * const vol = await conn.volumes.lookup({ path: (await (await conn.domains.get("test")).disks())[0]!.path });
 * const reader = (await vol.download({ offset: 512, length: 2 })).readable.getReader();
 * const { value } = await reader.read();
 * if (value?.[1] !== 7) throw new Error("unexpected");
 * ```
 */
export class GuestWrites {
  readonly #storage: StorageAccess;
  readonly #domains: DomainTable;
  readonly #listeners = new Map<string, Set<Listener>>();
  /** Per disk: the tail of its guest writes and the job steps that exclude them, run one at a time. */
  readonly #tails = new Map<string, Promise<unknown>>();

  /**
   * @param storage The connection's pools.
   * @param domains The connection's domains.
   */
  constructor(storage: StorageAccess, domains: DomainTable) {
    this.#storage = storage;
    this.#domains = domains;
  }

  /**
   * The writes to one disk, for a job that mirrors them.
   *
   * @param domain Domain name.
   * @param disk Disk target.
   * @returns The source a mirror subscribes to.
   */
  source(domain: string, disk: string): GuestWriteSource {
    const key = diskLockKey(domain, disk);
    return {
      exclusive: (work) => this.#serial(key, work),
      onWrite: (listener) => {
        let set = this.#listeners.get(key);
        if (!set) this.#listeners.set(key, (set = new Set()));
        set.add(listener);
        return () => void set.delete(listener);
      },
    };
  }

  /**
   * Writes bytes as the guest of a running domain would, and lets the disk's mirror see them.
   *
   * @param domain Domain name.
   * @param disk Disk target.
   * @param offset Byte offset in the disk.
   * @param bytes The bytes.
   * @throws {TypeError} For bytes that are not a `Uint8Array`. `RangeError` for a write past the end.
   * @throws {StateError} When the domain is not running (a paused or shut-off guest writes nothing).
   * @throws {NotFoundError} For an unknown domain or disk.
   */
  write(domain: string, disk: string, offset: number, bytes: Uint8Array): Promise<void> {
    // One at a time per disk, as a guest's writes to the same sectors complete in order, and never
    // inside a job's exclusive step (a pull's chunk, a mirror's pivot).
    return this.#serial(diskLockKey(domain, disk), () => this.#write(domain, disk, offset, bytes));
  }

  #serial<T>(key: string, work: () => Promise<T>): Promise<T> {
    const run = (this.#tails.get(key) ?? Promise.resolve()).then(work);
    const tail = run.catch(() => {});
    this.#tails.set(key, tail);
    void tail.then(() => this.#tails.get(key) === tail && this.#tails.delete(key));
    return run;
  }

  async #write(domain: string, disk: string, offset: number, bytes: Uint8Array): Promise<void> {
    if (!(bytes instanceof Uint8Array)) throw new TypeError("Invalid guest write: bytes must be a Uint8Array");
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`Invalid guest write offset ${offset}: expected a whole number of bytes from 0`);
    const { state } = this.#domains.info(domain);
    if (state !== "running") throw new StateError(`Cannot write to disk "${disk}" of domain "${domain}": the guest is ${state}`, { state, driver: "test" });
    const config = this.#domains.config(domain).disks.find((d) => d.target === disk);
    if (!config) throw new NotFoundError("disk", disk, { driver: "test", detail: `domain "${domain}" has no such disk` });
    const volume = await requireDiskVolume(this.#storage, domain, config, "testing.guestWrite");
    if (offset + bytes.length > volume.info.capacityBytes) {
      throw new RangeError(`Invalid guest write ${offset}+${bytes.length}: disk "${disk}" has ${volume.info.capacityBytes} bytes`);
    }
    const io = await this.#storage.openVolume(volume.pool, volume.name, { write: true });
    try {
      await io.write(offset, bytes);
      await io.flush();
    } finally {
      await io.close();
    }
    const listeners = [...(this.#listeners.get(diskLockKey(domain, disk)) ?? [])];
    await Promise.all(listeners.map((listener) => listener(offset, bytes)));
  }
}
