/**
 * Which libvirt block job type a virtkit job is. A `block-commit` job is COMMIT (one phase) or
 * ACTIVE_COMMIT (two phases, with `ready`) depending on its top, which virtkit's job info does not
 * carry: the daemon remembers it for the commits it starts (DOMAIN_BLOCK_COMMIT knows), per shared
 * connection, so GET_BLOCK_JOB_INFO and the BLOCK_JOB events of every client say the same. A commit the
 * daemon did not start is reported as ACTIVE_COMMIT, virtkit's default commit.
 *
 * @module
 */
import type { Connection } from "../core/connection.ts";
import type { JobInfo } from "../core/job.ts";
import { BLOCK_JOB_TYPE, blockJobTypeCode } from "./libvirt_codes.ts";

/** Commits remembered per connection: enough for every commit that can still be running. */
const MAX_REMEMBERED = 1024;
const KINDS = new WeakMap<Connection, Map<string, number>>();

/**
 * Records that a commit job of this connection is active (two-phase) or not.
 *
 * @param conn The shared connection.
 * @param jobId The job.
 * @param active Whether its top is the active image.
 * @example
 * ```ts
 * import { connect } from "../mod.ts";
 * import { blockJobTypeOf, rememberCommit } from "./block_job_kinds.ts";
 * await using conn = await connect("test:///default");
 * rememberCommit(conn, "job-9", false);
 * if (blockJobTypeOf(conn, { id: "job-9", type: "block-commit" }) !== 3) throw new Error("COMMIT");
 * if (blockJobTypeOf(conn, { id: "job-8", type: "block-commit" }) !== 4) throw new Error("ACTIVE_COMMIT by default");
 * if (blockJobTypeOf(conn, { id: "job-7", type: "block-copy" }) !== 2) throw new Error("COPY");
 * ```
 */
export function rememberCommit(conn: Connection, jobId: string, active: boolean): void {
  let kinds = KINDS.get(conn);
  if (!kinds) KINDS.set(conn, kinds = new Map());
  kinds.set(jobId, active ? BLOCK_JOB_TYPE.ACTIVE_COMMIT : BLOCK_JOB_TYPE.COMMIT);
  // Oldest first out: a Map iterates in insertion order.
  if (kinds.size > MAX_REMEMBERED) kinds.delete(kinds.keys().next().value!);
}

/**
 * libvirt's `virDomainBlockJobType` for a job, or undefined when it is no block job.
 *
 * @param conn The shared connection.
 * @param job The job's id and type.
 * @returns The number.
 * @example
 * ```ts
 * import { connect } from "../mod.ts";
 * import { blockJobTypeOf } from "./block_job_kinds.ts";
 * await using conn = await connect("test:///default");
 * if (blockJobTypeOf(conn, { id: "j", type: "block-pull" }) !== 1 || blockJobTypeOf(conn, { id: "j", type: "volume-clone" }) !== undefined) throw new Error("unexpected");
 * ```
 */
export function blockJobTypeOf(conn: Connection, job: Pick<JobInfo, "id" | "type">): number | undefined {
  if (job.type === "block-commit") return KINDS.get(conn)?.get(job.id) ?? BLOCK_JOB_TYPE.ACTIVE_COMMIT;
  return blockJobTypeCode(job.type);
}
