/**
 * {@linkcode VolumeIO} over a block device (an active logical volume): positional reads and writes on
 * the open device, its size given by LVM (a block device's `stat` size is 0). A device has no holes
 * anyone can see, so its whole range is data, and zeroes are written.
 *
 * @module
 */
import fsp from "node:fs/promises";
import { StateError } from "../../core/errors.ts";
import type { Extent } from "../../core/volume.ts";
import type { VolumeIO } from "../../core/volume_io.ts";

/** Largest zero-filled write `writeZeroes` issues at once. */
const ZERO_CHUNK_BYTES = 1 << 20;

/**
 * Opens a device (or any file standing for one) as a raw volume of `capacityBytes`.
 *
 * @param path The device path (`/dev/VG/LV`).
 * @param capacityBytes Its size.
 * @param mode Whether writes are allowed.
 * @param label How messages name the volume.
 * @returns The volume IO; reads stop at `capacityBytes`.
 * @example
 * ```ts
 * import fsp from "node:fs/promises";
 * import os from "node:os";
 * import path from "node:path";
 * import { openDeviceVolumeIO } from "./device_io.ts";
 * const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "dev-io-"));
 * try {
 *   const file = path.join(dir, "lv");
 *   await fsp.writeFile(file, new Uint8Array(8192));
 *   const io = await openDeviceVolumeIO(file, 4096, { write: true }, 'volume "lv"');
 *   await io.write(4000, new Uint8Array([9, 9]));
 *   const back = new Uint8Array(200);
 *   const read = await io.read(4000, back);
 *   await io.close();
 *   if (read !== 96 || back[1] !== 9) throw new Error("unexpected");
 * } finally {
 *   await fsp.rm(dir, { recursive: true, force: true });
 * }
 * ```
 */
export async function openDeviceVolumeIO(path: string, capacityBytes: number, mode: { write: boolean }, label: string): Promise<VolumeIO> {
  const handle = await fsp.open(path, mode.write ? "r+" : "r");
  let closed = false;
  const live = (action: string) => {
    if (closed) throw new StateError(`Cannot ${action} ${label}: it is closed`, { state: "closed", driver: "logical" });
  };
  const inRange = (offset: number, length: number, action: string) => {
    if (offset + length > capacityBytes) throw new RangeError(`Cannot ${action} ${label} at ${offset}+${length}: it holds ${capacityBytes} bytes`);
  };
  const write = async (offset: number, data: Uint8Array) => {
    live("write");
    if (!mode.write) throw new StateError(`Cannot write ${label}: it is open read-only`, { state: "read-only", driver: "logical" });
    inRange(offset, data.byteLength, "write");
    for (let done = 0; done < data.byteLength;) {
      done += (await handle.write(data, done, data.byteLength - done, offset + done)).bytesWritten;
    }
  };
  return {
    capacityBytes,
    async read(offset, target) {
      live("read");
      const want = Math.max(0, Math.min(target.byteLength, capacityBytes - offset));
      let done = 0;
      while (done < want) {
        const { bytesRead } = await handle.read(target, done, want - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done;
    },
    write,
    async writeZeroes(offset, length) {
      inRange(offset, length, "zero");
      const zeros = new Uint8Array(Math.min(length, ZERO_CHUNK_BYTES));
      for (let done = 0; done < length; done += zeros.byteLength) {
        await write(offset + done, zeros.subarray(0, Math.min(zeros.byteLength, length - done)));
      }
    },
    async *extents(offset, length): AsyncIterable<Extent> {
      live("map");
      const end = Math.min(offset + length, capacityBytes);
      if (end > offset) yield { offset, length: end - offset, data: true, zero: false, depth: 0 };
    },
    async flush() {
      live("flush");
      if (mode.write) await handle.datasync();
    },
    async close() {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}
