/**
 * Volume upload and download as jobs with web streams: `job.writable` takes the bytes of an upload,
 * `job.readable` (a byte stream; BYOB readers work) gives those of a download. Both are paced by the
 * job's limiter, stop while the job is paused, and end with the job.
 *
 * @module
 */
import { createRangeByteStream } from "../copy/range_stream.ts";
import type { DownloadJob, Job, UploadJob } from "../job.ts";
import type { LocalJobContext } from "../jobs/types.ts";
import { KiB } from "../units.ts";
import { guard, prepare, type PreparedVolume, type VolumeJobOptions } from "./job_support.ts";
import { resolveRange, trackReader } from "./volume_checks.ts";

/** Options of {@linkcode startUploadJob} and {@linkcode startDownloadJob}. */
export interface TransferJobOptions extends VolumeJobOptions {
  /** Start of the range (default 0). */
  offset?: number;
  /** Length of the range (default: to the end). */
  length?: number;
}

/** Bytes moved per step: the unit of pacing, pause and progress. */
const STEP_BYTES = KiB(256);

/**
 * Starts an upload: bytes written to `job.writable` land in the volume from `offset` on. Closing the
 * writable flushes the volume and completes the job; more than `length` bytes fail the job (and error the
 * stream) without writing the excess; `writable.abort()` or `job.abort()` end it aborted. What was
 * written before the end stays written.
 *
 * @param options The volume, range and cap.
 * @returns The running job with its writable.
 * @throws {NotFoundError} For an unknown pool or volume. `StateError` for an inactive pool.
 * @throws {ConflictError} When another job uses the volume.
 * @throws {RangeError} For a bad range or bandwidth.
 * @internal Reached through `volume.upload()`.
 * @example How a user reaches it
 * ```ts
 * import { connect } from "virtkit";
 * await using conn = await connect("test:///default");
 * const pool = await conn.pools.get("default-pool");
 * const volume = await pool.volumes.create({ name: "disk.raw", capacityBytes: 1 << 20, format: "raw" });
 * const job = await volume.upload({ offset: 0, length: 4 });
 * const writer = job.writable.getWriter();
 * await writer.write(new Uint8Array([0xeb, 0x3c, 0x90, 0x4d]));
 * await writer.close();
 * await job.wait();
 * const back = new Uint8Array(await new Response((await volume.download({ length: 4 })).readable).arrayBuffer());
 * if (back[0] !== 0xeb || back[3] !== 0x4d) throw new Error("unexpected");
 * ```
 */
export async function startUploadJob(options: TransferJobOptions): Promise<UploadJob> {
  const prepared = await prepare(options, { action: "upload to" });
  const { io, label } = prepared;
  const { offset, length } = await guard(io, () => resolveRange(options, io.capacityBytes, label));
  const end = offset + length;
  const ready = deferred<LocalJobContext>();
  const finished = deferred<void>();
  let position = offset;
  let busy: Promise<unknown> = Promise.resolve();
  let sink!: WritableStreamDefaultController;
  const fail = (error: unknown) => {
    finished.reject(error);
    throw error;
  };

  const writable = new WritableStream<Uint8Array>({
    start(controller) {
      sink = controller;
    },
    async write(chunk) {
      const ctx = await ready.promise;
      if (!(chunk instanceof Uint8Array)) fail(new TypeError(`Cannot upload to ${label}: chunks must be Uint8Array`));
      if (position + chunk.byteLength > end) {
        fail(new RangeError(`Cannot upload to ${label}: more than the ${length} bytes of range ${offset}+${length} were sent`));
      }
      const step = async () => {
        for (let done = 0; done < chunk.byteLength; ) {
          await ctx.checkpoint();
          const n = Math.min(STEP_BYTES, chunk.byteLength - done);
          await ctx.limiter.take(n, ctx.signal);
          // Paid for, but a pause that came meanwhile holds the bytes back: progress stands still while paused.
          await ctx.checkpoint();
          await io.write(position, chunk.subarray(done, done + n), { signal: ctx.signal });
          done += n;
          position += n;
          ctx.progress(position - offset);
        }
      };
      busy = step();
      await busy.catch(fail);
    },
    async close() {
      const ctx = await ready.promise;
      await ctx.checkpoint().then(() => io.flush({ signal: ctx.signal })).catch(fail);
      finished.resolve();
    },
    async abort() {
      await job.abort().catch(() => {});
    },
  });

  const job: Job<void> = await startTransfer(options, prepared, "volume-upload", length, ready, finished, () => busy, (reason) => {
    // A stopped job errors the stream with the signal's own reason (an AbortError, or an injected failure).
    sink.error(reason);
  });
  return withStream(job, { writable }) as UploadJob;
}

/**
 * Starts a download: `job.readable` yields the volume's guest-visible bytes over the range (holes as
 * zeros, not read). The job completes once the consumer has read the last byte; `readable.cancel()` or
 * `job.abort()` end it aborted. Progress counts bytes delivered.
 *
 * @param options The volume, range and cap.
 * @returns The running job with its readable.
 * @throws {NotFoundError} For an unknown pool or volume. `StateError` for an inactive pool.
 * @throws {RangeError} For a bad range or bandwidth.
 * @internal Reached through `volume.download()`.
 * @example How a user reaches it
 * ```ts
 * import { connect } from "virtkit";
 * await using conn = await connect("test:///default");
 * const volume = await (await conn.pools.get("default-pool")).volumes.get("template.img");
 * const job = await volume.download({ offset: 224 * 2 ** 20, length: 512, bandwidth: 1 << 30 });
 * const sector = new Uint8Array(await new Response(job.readable).arrayBuffer());
 * if (sector.length !== 512 || sector.some((byte) => byte !== 0xaa)) throw new Error("unexpected"); // the seed fills it with 0xaa
 * ```
 */
export async function startDownloadJob(options: TransferJobOptions): Promise<DownloadJob> {
  const prepared = await prepare(options, { action: "download", write: false });
  const { io, label } = prepared;
  const { offset, length } = await guard(io, () => resolveRange(options, io.capacityBytes, label));
  const ready = deferred<LocalJobContext>();
  const finished = deferred<void>();
  let inner: ReadableStreamBYOBReader | undefined;
  let bounce = new ArrayBuffer(STEP_BYTES);
  let delivered = 0;
  let busy: Promise<unknown> = Promise.resolve();
  let source!: ReadableByteStreamController;
  const end = () => {
    source.close();
    finished.resolve();
  };

  const readable = new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: STEP_BYTES,
    start(controller) {
      source = controller;
    },
    pull(controller) {
      const step = async () => {
        const ctx = await ready.promise;
        await ctx.checkpoint();
        inner ??= createRangeByteStream(io, { offset, length, limiter: ctx.limiter, signal: ctx.signal, chunkBytes: STEP_BYTES })
          .getReader({ mode: "byob" });
        // autoAllocateChunkSize guarantees a request; the range stream fills our bounce buffer, never
        // the consumer's, whose buffer a BYOB read would detach.
        const request = controller.byobRequest!;
        const view = request.view!;
        const { value, done } = await inner.read(new Uint8Array(bounce, 0, Math.min(view.byteLength, bounce.byteLength)));
        if (value) bounce = value.buffer as ArrayBuffer;
        await ctx.checkpoint();
        if (done || !value) {
          end();
          request.respond(0);
          return;
        }
        new Uint8Array(view.buffer, view.byteOffset, value.byteLength).set(value);
        request.respond(value.byteLength);
        delivered += value.byteLength;
        ctx.progress(delivered);
        if (delivered === length) end();
      };
      const running = step();
      busy = running;
      return running.catch((error: unknown) => {
        finished.reject(error);
        throw error;
      });
    },
    async cancel() {
      await job.abort().catch(() => {});
    },
  });

  const job: Job<void> = await startTransfer(options, prepared, "volume-download", length, ready, finished, () => busy, (reason) => {
    source.error(reason);
    void inner?.cancel(reason).catch(() => {});
  });
  if (length === 0) end();
  return withStream(job, { readable }) as DownloadJob;
}

/** Starts the job around a stream: it ends when the stream says so (or the job is stopped). */
function startTransfer(
  options: TransferJobOptions,
  prepared: PreparedVolume,
  type: "volume-upload" | "volume-download",
  length: number,
  ready: Deferred<LocalJobContext>,
  finished: Deferred<void>,
  inFlight: () => Promise<unknown>,
  stop: (reason: unknown) => void,
): Promise<Job<void>> {
  const { io, record } = prepared;
  return guard(io, () => {
    const upload = type === "volume-upload";
    prepared.assertIdle();
    const job = options.jobs.startLocal<void>({
      type,
      target: { pool: options.pool, volume: options.volume },
      endBytes: length,
      bandwidth: prepared.bandwidth,
      locks: prepared.locks,
      async run(ctx) {
        const onAbort = () => {
          stop(ctx.signal.reason);
          finished.reject(ctx.signal.reason);
        };
        ctx.signal.addEventListener("abort", onAbort, { once: true });
        ready.resolve(ctx);
        try {
          if (ctx.signal.aborted) onAbort();
          await finished.promise;
        } finally {
          ctx.signal.removeEventListener("abort", onAbort);
          await inFlight().catch(() => {});
          await io.close();
        }
      },
    });
    if (!upload) {
      const release = trackReader(options.jobs, { jobId: job.id, key: record.key, pool: options.pool });
      job.wait().then(release, release);
    }
    return job;
  });
}

/**
 * The job, with its stream: a new object delegating to the job, so the manager's own stays untouched.
 * Also used by drivers whose transfers run elsewhere (the remote driver's libvirt streams).
 *
 * @param job The manager's job.
 * @param stream `{ readable }` or `{ writable }`.
 * @returns The job with the stream.
 */
export function withStream<S extends object>(job: Job<void>, stream: S): Job<void> & S {
  return {
    id: job.id,
    type: job.type,
    target: job.target,
    info: (options) => job.info(options),
    setSpeed: (bytesPerSecond, options) => job.setSpeed(bytesPerSecond, options),
    pause: (options) => job.pause(options),
    resume: (options) => job.resume(options),
    abort: (options) => job.abort(options),
    finalize: (options) => job.finalize(options),
    dismiss: (options) => job.dismiss(options),
    wait: (options) => job.wait(options),
    ...stream,
  };
}

/** A promise with its settle functions. */
export interface Deferred<T> {
  /** The promise. */
  promise: Promise<T>;
  /** Fulfils it. */
  resolve(value: T): void;
  /** Rejects it. */
  reject(reason: unknown): void;
}

/**
 * A promise settled from outside; a rejection nobody awaits yet is not an unhandled one.
 *
 * @returns The deferred.
 */
export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Nobody may be waiting yet when it rejects.
  promise.catch(() => {});
  return { promise, resolve, reject };
}
