/**
 * Private helpers of the conformance cases: unique names, scoped clean-up, driving jobs on either clock,
 * and moving bytes through the public streams.
 *
 * @module
 */
import type { Connection } from "../../core/connection.ts";
import type { EventBus } from "../../core/event_bus.ts";
import type { CoreEvent, EventPattern, EventsMatching } from "../../core/events.ts";
import type { StoragePool } from "../../core/storage_pool.ts";
import type { Volume } from "../../core/volume.ts";
import { UnsupportedError } from "../../core/errors.ts";
import { assert, ConformanceError, describeError } from "./assert.ts";
import type { ConformanceTarget } from "./types.ts";

const DEFAULT_TIMEOUT_MS = 20_000;
/** Virtual time moved per step while a case waits on a virtual clock. */
const VIRTUAL_STEP_MS = 100;
/** Longest virtual time a case waits for one thing: well above any job the cases start. */
const VIRTUAL_LIMIT_MS = 600_000;
let counter = 0;

/** A name no other case (nor a previous run on a shared connection) uses: `ck-<what>-<n><random>`. */
export function uniqueName(what: string): string {
  counter++;
  const random = Math.floor(Math.random() * 0x100000).toString(36);
  return `ck-${what}-${counter}${random}`;
}

/**
 * Runs `body`, then `cleanup`. A clean-up failure is reported only when the body succeeded, so it never
 * hides the failure that matters.
 */
export async function scoped<T>(body: () => Promise<T>, cleanup: () => Promise<void>): Promise<T> {
  let failed = false;
  try {
    return await body();
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    try {
      await cleanup();
    } catch (error) {
      if (!failed) throw error;
    }
  }
}

/** Opens a connection through the target for the length of `body`. */
export function withConnection<T>(target: ConformanceTarget, body: (conn: Connection) => Promise<T>): Promise<T> {
  return target.connect().then((conn) => scoped(() => body(conn), () => conn.close()));
}

/** Creates (defines, builds, starts) a scratch pool for `body`, then removes it and its volumes. */
export async function withPool<T>(
  target: ConformanceTarget,
  conn: Connection,
  body: (pool: StoragePool) => Promise<T>,
): Promise<T> {
  const pool = await conn.pools.create(poolConfig(target, uniqueName("pool")));
  return scoped(() => body(pool), () => removePool(pool));
}

/** The target's pool config, checked to carry the name asked for. */
export function poolConfig(target: ConformanceTarget, name: string): ReturnType<NonNullable<ConformanceTarget["poolConfig"]>> {
  if (!target.poolConfig) throw new TypeError("The conformance target declares storage but has no poolConfig()");
  const config = target.poolConfig(name);
  if (config.name !== name) throw new TypeError(`poolConfig("${name}") returned a pool named "${config.name}"`);
  return config;
}

/** Deletes a pool's volumes, stops it, deletes its storage when the backend can, and undefines it. */
export async function removePool(pool: StoragePool): Promise<void> {
  if ((await pool.info()).state === "active") {
    for (const volume of await pool.volumes.list()) await volume.delete();
    await pool.stop();
  }
  try {
    await pool.delete();
  } catch (error) {
    if (!(error instanceof UnsupportedError)) throw error;
  }
  await pool.undefine();
}

/**
 * Waits for `promise`, moving the target's virtual clock forward meanwhile (jobs on a virtual clock only
 * progress when it moves). Fails after the target's timeout: virtual time on a virtual clock, real time
 * otherwise, so a hung driver fails the case with a message instead of hanging the runner.
 */
export async function drive<T>(target: ConformanceTarget, promise: Promise<T>, what: string): Promise<T> {
  const timeoutMs = target.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let settled = false;
  const watched = promise.finally(() => {
    settled = true;
  });
  const clock = target.clock;
  if (!clock) return withDeadline(watched, timeoutMs, what);
  watched.catch(() => {});
  // Bounded twice: by virtual time (a job that never ends) and by real time (a driver that never yields).
  const start = clock.now();
  const realStart = performance.now();
  while (!settled && clock.now() - start < VIRTUAL_LIMIT_MS && performance.now() - realStart < timeoutMs) {
    await clock.advance(VIRTUAL_STEP_MS);
  }
  if (!settled) {
    throw new ConformanceError(
      `Timed out waiting for ${what} (${clock.now() - start} ms of virtual time, ${Math.round(performance.now() - realStart)} ms of real time)`,
    );
  }
  return watched;
}

/** Rejects with a ConformanceError when `promise` does not settle within `ms` of real time. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ConformanceError(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Moves a virtual clock forward by `ms`; does nothing on the real clock. */
export async function elapse(target: ConformanceTarget, ms: number): Promise<void> {
  if (target.clock) await target.clock.advance(ms);
}

/** `length` bytes of a recognisable, non-zero pattern that differs by `seed`. */
export function patternBytes(length: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = ((i * 31 + seed * 7) % 251) + 1;
  return bytes;
}

/** Writes `data` into `volume` at `offset` through an upload job, and waits for the job to complete. */
export async function uploadBytes(target: ConformanceTarget, volume: Volume, data: Uint8Array, offset = 0): Promise<void> {
  const job = await volume.upload({ offset, length: data.byteLength });
  const writer = job.writable.getWriter();
  const chunkBytes = 256 * 1024;
  const written = (async () => {
    for (let at = 0; at < data.byteLength; at += chunkBytes) await writer.write(data.slice(at, at + chunkBytes));
    await writer.close();
  })();
  await drive(target, written, `the upload to volume "${volume.name}" to take its bytes`);
  await drive(target, job.wait(), `upload job "${job.id}" to complete`);
}

/** Reads a range of `volume` through a download job. */
export async function downloadBytes(
  target: ConformanceTarget,
  volume: Volume,
  range: { offset?: number; length?: number } = {},
): Promise<Uint8Array> {
  const job = await volume.download(range);
  const bytes = await drive(target, readAll(job.readable), `the download of volume "${volume.name}"`);
  await drive(target, job.wait(), `download job "${job.id}" to complete`);
  return bytes;
}

/** Reads a byte stream to its end. */
export async function readAll(readable: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = readable.getReader();
  try {
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      chunks.push(r.value.slice());
      total += r.value.byteLength;
    }
  } finally {
    reader.releaseLock();
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** Records matching events from now on; `stop()` ends the recording. */
export function record<P extends EventPattern>(bus: EventBus, pattern: P): { events: EventsMatching<P>[]; stop(): void } {
  const events: EventsMatching<P>[] = [];
  const stop = bus.on(pattern, (event) => {
    events.push(event);
  });
  return { events, stop };
}

/** Checks that the events' `seq` strictly increase. */
export function assertIncreasingSeq(events: readonly CoreEvent[], what: string): void {
  for (let i = 1; i < events.length; i++) {
    assert(
      events[i]!.seq > events[i - 1]!.seq,
      `${what}: seq must increase, but event ${i} (${events[i]!.type}) has seq ${events[i]!.seq} after ${events[i - 1]!.seq}`,
    );
  }
}

/** Creates a raw volume filled with a pattern, for cases that copy or read data. */
export async function filledVolume(
  target: ConformanceTarget,
  pool: StoragePool,
  capacityBytes: number,
  seed = 1,
): Promise<{ volume: Volume; data: Uint8Array }> {
  const volume = await pool.volumes.create({ name: uniqueName("src"), capacityBytes, format: "raw" });
  const data = patternBytes(capacityBytes, seed);
  await uploadBytes(target, volume, data);
  return { volume, data };
}

/** Checks that `fn` rejects with exactly `reason`: cancellation is the signal's own reason, never wrapped. */
export async function assertAbortedWith(fn: () => Promise<unknown>, reason: unknown, what: string): Promise<void> {
  let outcome: { value: unknown } | { error: unknown };
  try {
    outcome = { value: await fn() };
  } catch (error) {
    outcome = { error };
  }
  if ("value" in outcome) throw new ConformanceError(`Expected ${what} with an aborted signal to reject, but it succeeded`);
  if (outcome.error !== reason) {
    throw new ConformanceError(
      `Expected ${what} with an aborted signal to reject with the signal's own reason, got ${describeError(outcome.error)}`,
      { cause: outcome.error },
    );
  }
}
