/**
 * `vol-upload` and `vol-download`: a local file into a volume and back, through the volume's upload
 * and download jobs (streams, capped, with progress). Downloads keep holes: all-zero chunks are not
 * written, so the file is as sparse as the volume.
 *
 * @module
 */
import { open } from "node:fs/promises";
import { isAllZero } from "../../core/copy/zero_bytes.ts";
import { KiB, MiB } from "../../core/units.ts";
import type { CommandSpec } from "../spec.ts";
import { parseSizeArg } from "../values.ts";
import { finishJob, JOB_OPTIONS, jobBandwidth } from "./job_run.ts";
import { findVolume, POOL_OPTION, VOL_ARG } from "./volume_ref.ts";

const RANGE_OPTIONS = {
  offset: { type: "string", value: "BYTES", description: "start in the volume (default 0)" },
  length: { type: "string", value: "BYTES", description: "how much (default: to the end)" },
} as const;

/**
 * The download's read and file write size. 64 KiB: larger aligned writes into a new file get large
 * page-cache folios, which on a VM that hands free memory back to its host (virtio-balloon free page
 * reporting, from 128 KiB blocks up) come from memory the host must fault in again: 512 MiB written in
 * 256 KiB pieces took 0.1-1.4 s there, in 64 KiB pieces 0.11-0.15 s (8 runs each). Holes are found at
 * this grain too.
 */
const DOWNLOAD_BUFFER_BYTES = KiB(64);

function range(options: Readonly<Record<string, string | boolean | undefined>>): { offset?: number; length?: number } {
  const result: { offset?: number; length?: number } = {};
  if (typeof options.offset === "string") result.offset = parseSizeArg(options.offset, "--offset");
  if (typeof options.length === "string") result.length = parseSizeArg(options.length, "--length");
  return result;
}

/** The transfer commands. */
export const TRANSFER_COMMANDS: readonly CommandSpec[] = [
  {
    name: "vol-upload",
    group: "Volumes",
    summary: "write a local file's bytes into a volume, following the job",
    args: [VOL_ARG, { name: "FILE", description: "the local file to read" }],
    options: { pool: POOL_OPTION, ...RANGE_OPTIONS, ...JOB_OPTIONS },
    examples: ["vol-upload web1.img ./built.img --pool default-pool --bandwidth 100"],
    async run(ctx) {
      const conn = await ctx.connect();
      const volume = await findVolume(conn, ctx.args.VOL!, ctx.options.pool as string | undefined);
      const file = await open(ctx.args.FILE!, "r");
      try {
        const { size } = await file.stat();
        const wanted = range(ctx.options);
        const job = await volume.upload({ ...wanted, length: wanted.length ?? size, bandwidth: jobBandwidth(ctx) });
        const pump = (async () => {
          const writer = job.writable.getWriter();
          try {
            const buffer = new Uint8Array(MiB(1));
            for (;;) {
              const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
              if (bytesRead === 0) break;
              await writer.write(buffer.slice(0, bytesRead));
            }
            await writer.close();
          } catch (error) {
            await writer.abort(error).catch(() => {});
          }
        })();
        const code = await finishJob(ctx, conn, job, { wait: true });
        await pump;
        return code;
      } finally {
        await file.close();
      }
    },
  },
  {
    name: "vol-download",
    group: "Volumes",
    summary: "read a volume's bytes into a local file (sparse), following the job",
    args: [VOL_ARG, { name: "FILE", description: "the local file to write (created or truncated)" }],
    options: { pool: POOL_OPTION, ...RANGE_OPTIONS, ...JOB_OPTIONS },
    examples: ["vol-download test.qcow2 ./guest-disk.raw --pool default-pool"],
    async run(ctx) {
      const conn = await ctx.connect();
      const volume = await findVolume(conn, ctx.args.VOL!, ctx.options.pool as string | undefined);
      const job = await volume.download({ ...range(ctx.options), bandwidth: jobBandwidth(ctx) });
      const file = await open(ctx.args.FILE!, "w");
      try {
        const pump = (async () => {
          // One buffer for the whole download (a BYOB reader hands it back after each read): no
          // allocation per chunk. All-zero reads (a volume's holes) are not written.
          const reader = job.readable.getReader({ mode: "byob" });
          let buffer = new ArrayBuffer(DOWNLOAD_BUFFER_BYTES);
          let position = 0;
          for (;;) {
            const { value, done } = await reader.read(new Uint8Array(buffer));
            if (done) break;
            if (!isAllZero(value)) await file.write(value, 0, value.byteLength, position);
            position += value.byteLength;
            buffer = value.buffer;
          }
          await file.truncate(position);
        })();
        const code = await finishJob(ctx, conn, job, { wait: true });
        await pump.catch((error: unknown) => {
          if (code === 0) throw error;
        });
        return code;
      } finally {
        await file.close();
      }
    },
  },
];
