/**
 * What the block job cases share: a thin qcow2 disk over a raw base (both with data of their own) under
 * a fresh domain, shut off or running, and waiting for a job's `ready`.
 *
 * @module
 */
import type { Connection } from "../../core/connection.ts";
import type { Domain } from "../../core/domain.ts";
import type { Job } from "../../core/job.ts";
import type { StoragePool } from "../../core/storage_pool.ts";
import { MiB } from "../../core/units.ts";
import type { Volume } from "../../core/volume.ts";
import { drive, filledVolume, patternBytes, uniqueName, uploadBytes } from "./_support.ts";
import type { ConformanceTarget } from "./types.ts";

/** A chain under a domain. */
export interface DiskChain {
  /** The domain, with disk `vda` on `top`. */
  readonly domain: Domain;
  /** The raw base volume. */
  readonly base: Volume;
  /** The qcow2 top volume over `base`. */
  readonly top: Volume;
  /** What the disk reads (the base's data with the top's on it). */
  readonly view: Uint8Array;
  /** The base's own data. */
  readonly baseData: Uint8Array;
}

/** Size of the disks the block job cases make. */
export const CHAIN_BYTES = MiB(2);
/** Where the top image holds data of its own, and how much. */
export const TOP_DATA = { offset: MiB(1), length: 65536 } as const;

/**
 * Makes the chain and the domain, started when `running`.
 *
 * @param target The driver under test.
 * @param conn The case's connection.
 * @param pool The case's pool.
 * @param running Start the domain.
 * @returns The chain.
 * @example
 * ```ts
 * import { makeDiskChain } from "./disk_chain_support.ts";
 * import { connect, createVirtualClock, MiB } from "virtkit";
 * const clock = createVirtualClock();
 * await using conn = await connect("test:///empty", { clock });
 * const target = { connect: () => Promise.resolve(conn), clock, domainConfig: (name: string) => ({ name, vcpus: 1, memoryBytes: MiB(64), disks: [] }) };
 * const pool = await conn.pools.create({ name: "p", type: "memory" });
 * const chain = await makeDiskChain(target, conn, pool, true);
 * if ((await chain.domain.info()).state !== "running" || (await chain.domain.disks())[0]!.backingChain.length !== 1) throw new Error("unexpected");
 * ```
 */
export async function makeDiskChain(target: ConformanceTarget, conn: Connection, pool: StoragePool, running: boolean): Promise<DiskChain> {
  const { volume: base, data: baseData } = await filledVolume(target, pool, CHAIN_BYTES, 21);
  const top = await pool.volumes.create({
    name: uniqueName("top"),
    capacityBytes: CHAIN_BYTES,
    format: "qcow2",
    backing: { path: base.path, format: "raw" },
  });
  const own = patternBytes(TOP_DATA.length, 22);
  await uploadBytes(target, top, own, TOP_DATA.offset);
  const view = baseData.slice();
  view.set(own, TOP_DATA.offset);
  const config = target.domainConfig!(uniqueName("dom"));
  const domain = await conn.domains.define({ ...config, disks: [{ target: "vda", volume: { pool: pool.name, name: top.name }, format: "qcow2" }] });
  if (running) await domain.start();
  return { domain, base, top, view, baseData };
}

/**
 * Resolves once the job is `ready` (moving a virtual clock meanwhile), or rejects when it ends first.
 *
 * @param target The driver under test.
 * @param conn The job's connection.
 * @param job The job.
 * @example
 * ```ts
 * import { waitReady } from "./disk_chain_support.ts";
 * import { connect } from "virtkit";
 * await using conn = await connect("test:///default");
 * const dom = await conn.domains.get("test");
 * const job = await dom.blockCommit("vda");
 * await waitReady({ connect: () => Promise.resolve(conn) }, conn, job);
 * if ((await job.info()).state !== "ready") throw new Error("unexpected");
 * await job.abort();
 * ```
 */
export async function waitReady(target: ConformanceTarget, conn: Connection, job: Job): Promise<void> {
  let off = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    off = conn.events.on("job:*", (e) => {
      if (e.job.id !== job.id) return;
      if (e.job.state === "ready") resolve();
      else if (["completed", "failed", "aborted"].includes(e.job.state)) reject(new Error(`job "${job.id}" ended ${e.job.state} before it was ready`));
    });
  });
  try {
    if ((await job.info()).state !== "ready") await drive(target, ready, `job "${job.id}" to be ready`);
  } finally {
    off();
  }
}
