/**
 * The main job's template image: a raw file holding real, incompressible data in half of its extents
 * and holes in the other half (as a golden image with free space has), and the check that a volume
 * shows exactly its bytes.
 *
 * @module
 */
import { open } from "node:fs/promises";
import type { Volume } from "../../core/volume.ts";
import { MiB } from "../../core/units.ts";

/** Data and hole runs alternate at this size: 4 MiB of data, then a 4 MiB hole. */
export const RUN_BYTES: number = MiB(4);

/** What the template holds. */
export interface TemplateLayout {
  /** Bytes of data written. */
  readonly dataBytes: number;
  /** Bytes left as holes. */
  readonly holeBytes: number;
}

/**
 * Fills `chunk` with the template's bytes at `offset`: xorshift32 per 64 KiB block, seeded by the
 * block's position, so every region differs and nothing is compressible or zero.
 *
 * @param chunk Where to write (a multiple of 4 bytes, 64 KiB aligned offset).
 * @param offset Its position in the image.
 * @example
 * ```ts
 * import { fillPattern } from "./template.ts";
 * const a = new Uint8Array(65536), b = new Uint8Array(65536);
 * fillPattern(a, 0); fillPattern(b, 65536);
 * if (a.every((x) => x === 0) || a.every((x, i) => x === b[i])) throw new Error("blocks must differ");
 * ```
 */
export function fillPattern(chunk: Uint8Array, offset: number): void {
  const words = new Uint32Array(chunk.buffer, chunk.byteOffset, chunk.byteLength >>> 2);
  const perBlock = 65536 / 4;
  for (let block = 0; block < words.length; block += perBlock) {
    let x = (Math.imul((offset + block * 4) / 65536 + 1, 2654435761) >>> 0) || 1;
    const stop = Math.min(words.length, block + perBlock);
    for (let i = block; i < stop; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x >>> 0;
    }
  }
}

/**
 * Writes the template's data into the raw file at `path` (already `sizeBytes` long and sparse).
 *
 * @param path The raw image file.
 * @param sizeBytes Its size (a multiple of 64 KiB).
 * @returns How much is data and how much hole.
 */
export async function writeTemplate(path: string, sizeBytes: number): Promise<TemplateLayout> {
  const file = await open(path, "r+");
  let dataBytes = 0;
  try {
    const chunk = new Uint8Array(MiB(1));
    for (let run = 0; run < sizeBytes; run += 2 * RUN_BYTES) {
      for (let at = run; at < Math.min(run + RUN_BYTES, sizeBytes); at += chunk.length) {
        const piece = chunk.subarray(0, Math.min(chunk.length, sizeBytes - at));
        fillPattern(piece, at);
        await file.write(piece, 0, piece.length, at);
        dataBytes += piece.length;
      }
    }
    await file.sync();
  } finally {
    await file.close();
  }
  return { dataBytes, holeBytes: sizeBytes - dataBytes };
}

/**
 * Reads the volume as a guest sees it (its download stream) and compares every byte with the template
 * file.
 *
 * @param volume The pulled volume.
 * @param templatePath The template file.
 * @returns The offset of the first difference, or `undefined` when every byte matches.
 */
export async function firstDifference(volume: Volume, templatePath: string): Promise<number | undefined> {
  const template = await open(templatePath, "r");
  try {
    const job = await volume.download();
    const expected = new Uint8Array(MiB(1));
    let position = 0;
    let mismatch: number | undefined;
    for await (const chunk of job.readable as unknown as AsyncIterable<Uint8Array>) {
      if (mismatch === undefined) {
        for (let done = 0; done < chunk.length;) {
          const n = Math.min(expected.length, chunk.length - done);
          const { bytesRead } = await template.read(expected, 0, n, position + done);
          for (let i = 0; i < n; i++) {
            if (chunk[done + i] !== (i < bytesRead ? expected[i] : 0)) {
              mismatch = position + done + i;
              break;
            }
          }
          if (mismatch !== undefined) break;
          done += n;
        }
      }
      position += chunk.length;
    }
    await job.wait();
    return mismatch;
  } finally {
    await template.close();
  }
}
