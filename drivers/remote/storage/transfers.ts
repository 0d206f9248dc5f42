/**
 * Volume upload and download over libvirt streams (STORAGE_VOL_UPLOAD 208 / DOWNLOAD 209), as jobs of
 * the connection's job list with virtkit's web streams: `job.writable` sends STREAM frames, `job.readable`
 * (a byte stream: BYOB readers work) gives the frames libvirt sends. The cap is the job's limiter, taken
 * before each piece is passed on, so a capped transfer is simply paced (and the socket's own
 * backpressure slows libvirt down); `job.abort()` or cancelling the stream aborts libvirt's stream.
 *
 * A download is a sparse stream (`SPARSE_STREAM`): libvirtd sends the volume's holes as their length,
 * not as zero bytes, and does not read them (virtkitd sends its all-zero chunks so). The reader still gets every byte (holes as
 * zeros, as a local download gives them), and the cap charges only the data that crossed the wire,
 * as a local download charges only what it read.
 *
 * @module
 */
import type { RateLimiter } from "../../../core/copy/rate_limiter.ts";
import { ConflictError } from "../../../core/errors.ts";
import type { DownloadJob, Job, UploadJob } from "../../../core/job.ts";
import type { LocalJobContext } from "../../../core/jobs/types.ts";
import type { PendingAdoption } from "../daemon_jobs.ts";
import { type Deferred, deferred, withStream } from "../../../core/storage/upload_download.ts";
import { assertBandwidth, assertBytes, KiB } from "../../../core/units.ts";
import type { CappedRangeOptions } from "../../../core/volume.ts";
import type { VolumeRefValue } from "../rpc/protocol/common.ts";
import { STREAM_CHUNK_BYTES } from "../rpc/packet.ts";
import { STORAGE_VOL_DOWNLOAD, STORAGE_VOL_GET_INFO, STORAGE_VOL_UPLOAD, VolumeStreamFlags } from "../rpc/protocol/storage.ts";
import { LibvirtErrorCode, libvirtErrorOf } from "../rpc/errors.ts";
import type { RpcStream } from "../rpc/stream.ts";
import { callContext, type RemoteStorageContext } from "./context.ts";

/** Bytes passed on per step: the unit of pacing and progress. */
const STEP_BYTES = KiB(256);

/** Whether the limiter or one it draws from has a cap (a take then may wait). */
function capped(limiter: RateLimiter | undefined): boolean {
  for (; limiter; limiter = limiter.parent) if (limiter.bytesPerSecond > 0) return true;
  return false;
}

/** What the stream pumps need of their job: pacing, progress and the abort signal. */
type Pacing = Pick<LocalJobContext, "signal" | "limiter" | "checkpoint" | "progress">;

interface Range {
  offset: number;
  length: number;
}

async function rangeOf(ctx: RemoteStorageContext, vol: VolumeRefValue, options: CappedRangeOptions, what: string): Promise<Range> {
  const offset = assertBytes(options.offset ?? 0, "offset");
  const { capacity } = await ctx.client.call(STORAGE_VOL_GET_INFO, { vol }, callContext(vol.name, `${what} volume "${vol.name}"`, options));
  const length = options.length === undefined ? Math.max(0, capacity - offset) : assertBytes(options.length, "length");
  if (offset + length > capacity) {
    throw new RangeError(`Cannot ${what} volume "${vol.name}": range ${offset}+${length} ends beyond its ${capacity} bytes`);
  }
  return { offset, length };
}

/**
 * Starts a download of `vol` over a libvirt stream.
 *
 * @param ctx The connection's parts.
 * @param vol The volume.
 * @param options Range and cap.
 * @returns The running job with its readable.
 * @example
 * ```ts
 * import { startRemoteDownload } from "./transfers.ts";
 * if (typeof startRemoteDownload !== "function") throw new Error("unexpected");
 * ```
 */
export async function startRemoteDownload(ctx: RemoteStorageContext, vol: VolumeRefValue, options: CappedRangeOptions): Promise<DownloadJob> {
  const bandwidth = assertBandwidth(options.bandwidth, "bandwidth");
  const { offset, length } = await rangeOf(ctx, vol, options, "download");
  // libvirt reads length 0 as "to the end": an empty range opens no stream.
  let adoption = length === 0 ? undefined : expectDaemonJob(ctx, vol, "volume-download");
  const openDownload = (sparse: boolean) =>
    ctx.client.openStream(STORAGE_VOL_DOWNLOAD, { vol, offset, length, flags: sparse ? VolumeStreamFlags.SPARSE_STREAM : 0 }, { ...callContext(vol.name, `download volume "${vol.name}"`, options), holes: sparse });
  const stream = length === 0 ? undefined : await opened(adoption, openDownload(true)).catch((error: unknown) => {
    // A peer that predates sparse streams (libvirt < 3.4) refuses the flag: download plainly.
    if (!refusedFlags(error)) throw error;
    adoption = expectDaemonJob(ctx, vol, "volume-download");
    return opened(adoption, openDownload(false));
  });
  const ready = deferred<Pacing>();
  const finished = deferred<void>();
  let delivered = 0;
  let source!: ReadableByteStreamController;
  const end = (request?: ReadableStreamBYOBRequest) => {
    source.close();
    request?.respond(0);
    finished.resolve();
  };
  const readable = new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: STEP_BYTES,
    start: (controller) => void (source = controller),
    async pull(controller) {
      try {
        const jc = await ready.promise;
        const request = controller.byobRequest!;
        const view = request.view!;
        const target = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
        // The stream copies its data straight into the reader's buffer (one copy from the socket's).
        let filled = 0;
        if (!capped(jc.limiter)) {
          // Nothing to pace: the whole buffer in one read (many frames), one turn of the web stream.
          await jc.checkpoint();
          filled = await stream!.read(target, target.length);
          if (filled === 0) return end(request);
        }
        // Capped: steps of STEP_BYTES, each paced before it is passed on. Fill the buffer with what has
        // arrived, but wait for the socket only while it is still empty.
        while (filled < target.length) {
          if (filled > 0 && stream!.bufferedBytes === 0) break;
          await jc.checkpoint();
          const zerosBefore = stream!.holeBytesRead;
          const n = await stream!.read(target.subarray(filled, Math.min(target.length, filled + STEP_BYTES)));
          if (n === 0) {
            if (filled > 0) break;
            return end(request);
          }
          // Taken before the bytes are passed on: a capped download is paced per step. A hole's zeros
          // did not cross the wire and cost nothing against the cap.
          const data = n - (stream!.holeBytesRead - zerosBefore);
          if (data > 0) await jc.limiter.take(data, jc.signal);
          filled += n;
        }
        request.respond(filled);
        delivered += filled;
        jc.progress(delivered);
      } catch (error) {
        finished.reject(error);
        throw error;
      }
    },
    cancel: async () => void (await job.abort().catch(() => {})),
  });
  const job = await start(ctx, vol, "volume-download", length, bandwidth, ready, finished, stream, (reason) => source.error(reason), [], adoption);
  if (!stream) end();
  return withStream(job, { readable }) as DownloadJob;
}

/**
 * Starts an upload into `vol` over a libvirt stream.
 *
 * @param ctx The connection's parts.
 * @param vol The volume.
 * @param options Range and cap.
 * @returns The running job with its writable.
 */
export async function startRemoteUpload(ctx: RemoteStorageContext, vol: VolumeRefValue, options: CappedRangeOptions): Promise<UploadJob> {
  const bandwidth = assertBandwidth(options.bandwidth, "bandwidth");
  const { offset, length } = await rangeOf(ctx, vol, options, "upload to");
  // A daemon job on the volume holds it under its pool/name (daemon_jobs.ts), a local one under its key.
  const holder = ctx.jobs.holder(vol.key) ?? ctx.jobs.holder(`volume:${vol.pool}/${vol.name}`);
  if (holder) throw new ConflictError(`Cannot upload to volume "${vol.name}": job "${holder}" uses it`, { jobId: holder, driver: "remote" });
  const adoption = length === 0 ? undefined : expectDaemonJob(ctx, vol, "volume-upload");
  const stream = length === 0 ? undefined : await opened(adoption, ctx.client.openStream(STORAGE_VOL_UPLOAD, { vol, offset, length, flags: 0 }, callContext(vol.name, `upload to volume "${vol.name}"`, options)));
  const ready = deferred<Pacing>();
  const finished = deferred<void>();
  let sent = 0;
  let sink!: WritableStreamDefaultController;
  const fail = (error: unknown): never => {
    finished.reject(error);
    throw error;
  };
  const writable = new WritableStream<Uint8Array>({
    start: (controller) => void (sink = controller),
    async write(chunk) {
      const jc = await ready.promise;
      if (!(chunk instanceof Uint8Array)) fail(new TypeError(`Cannot upload to volume "${vol.name}": chunks must be Uint8Array`));
      if (sent + chunk.byteLength > length) fail(new RangeError(`Cannot upload to volume "${vol.name}": more than the ${length} bytes of range ${offset}+${length} were sent`));
      try {
        // One STREAM frame per piece: pieces of libvirt's frame size, not a full frame plus a sliver.
        for (let at = 0; at < chunk.byteLength; at += STREAM_CHUNK_BYTES) {
          const piece = chunk.subarray(at, Math.min(chunk.byteLength, at + STREAM_CHUNK_BYTES));
          await jc.checkpoint();
          await jc.limiter.take(piece.byteLength, jc.signal);
          await stream!.write(piece);
          sent += piece.byteLength;
          jc.progress(sent);
        }
      } catch (error) {
        fail(error);
      }
    },
    async close() {
      await ready.promise;
      await stream?.finish().catch(fail);
      finished.resolve();
    },
    abort: async () => void (await job.abort().catch(() => {})),
  });
  const job = await start(ctx, vol, "volume-upload", length, bandwidth, ready, finished, stream, (reason) => sink.error(reason), [vol.key], adoption);
  return withStream(job, { writable }) as UploadJob;
}

/** Whether a call failed on libvirt's flag check (`virCheckFlags`: INVALID_ARG "unsupported flags"). */
function refusedFlags(error: unknown): boolean {
  const details = libvirtErrorOf(error);
  return details?.code === LibvirtErrorCode.INVALID_ARG && /unsupported flags/.test(details.message);
}

/** On virtkitd, starts looking for the daemon job the stream call makes (undefined elsewhere). */
function expectDaemonJob(ctx: RemoteStorageContext, vol: VolumeRefValue, type: "volume-upload" | "volume-download"): PendingAdoption | undefined {
  return ctx.daemon?.()?.expect({ type, target: { pool: vol.pool, volume: vol.name } });
}

async function opened(adoption: PendingAdoption | undefined, stream: Promise<RpcStream>): Promise<RpcStream> {
  try {
    return await stream;
  } catch (error) {
    adoption?.cancel();
    throw error;
  }
}

async function start(
  ctx: RemoteStorageContext,
  vol: VolumeRefValue,
  type: "volume-upload" | "volume-download",
  length: number,
  bandwidth: number,
  ready: Deferred<Pacing>,
  finished: Deferred<void>,
  stream: RpcStream | undefined,
  stop: (reason: unknown) => void,
  locks: string[],
  adoption: PendingAdoption | undefined,
): Promise<Job<void>> {
  if (adoption) {
    // The daemon's job is the transfer's: it paces (its cap), counts progress and ends it. Here the
    // bytes only pass through, under the connection-wide budget.
    const job = await adoption.found() as Job<void>;
    const ended = new AbortController();
    job.wait().catch((error) => ended.abort(error));
    ready.resolve({ signal: ended.signal, limiter: ctx.jobs.limiter, checkpoint: () => Promise.resolve(), progress: () => {} });
    finished.promise.catch(() => {});
    if (bandwidth > 0) await job.setSpeed(bandwidth);
    return job;
  }
  return ctx.jobs.startLocal<void>({
    type,
    target: { pool: vol.pool, volume: vol.name },
    endBytes: length,
    bandwidth,
    locks,
    driver: "remote",
    async run(jc) {
      const onAbort = () => {
        stop(jc.signal.reason);
        void stream?.abort();
        finished.reject(jc.signal.reason);
      };
      jc.signal.addEventListener("abort", onAbort, { once: true });
      ready.resolve(jc);
      try {
        if (jc.signal.aborted) onAbort();
        await finished.promise;
      } finally {
        jc.signal.removeEventListener("abort", onAbort);
      }
    },
  });
}
