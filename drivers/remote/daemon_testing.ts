/**
 * `conn.testing` of a remote connection to a `test:` connection on virtkitd: the daemon's fault
 * injection and fixtures over virtkit's program. `failNext` and `failJob` are synchronous in the
 * contract, so they are checked here (a bad error, an unknown or finished job) and then sent; the
 * daemon applies them in the order the calls after them arrive, so the next call sees the fault.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { TestingControls } from "../../core/driver.ts";
import { NotFoundError, StateError } from "../../core/errors.ts";
import { TERMINAL_JOB_STATES } from "../../core/job.ts";
import { assertBytes } from "../../core/units.ts";
import type { DaemonJobs } from "./daemon_jobs.ts";

function assertError(error: unknown, what: string): void {
  if (!(error instanceof Error)) throw new TypeError(`Invalid ${what}: expected an Error`);
}

/**
 * The testing controls over the daemon.
 *
 * @param daemon The daemon's jobs (its extension client, and the job states known here).
 * @returns The controls.
 * @example
 * ```ts
 * import { daemonTesting } from "./daemon_testing.ts";
 * const testing = daemonTesting({ ext: { testing: async () => {} }, stateOf: () => undefined } as never);
 * let code = "";
 * try { testing.failJob("job-9", new Error("x")); } catch (error) { code = (error as { code: string }).code; }
 * if (code !== "not-found") throw new Error(`unexpected ${code}`);
 * ```
 */
export function daemonTesting(daemon: Pick<DaemonJobs, "ext" | "stateOf">): TestingControls {
  // A refusal the checks here could not foresee surfaces at the next call that expected the fault.
  const send = (request: Parameters<DaemonJobs["ext"]["testing"]>[0]) => void daemon.ext.testing(request).catch(() => {});
  return Object.freeze({
    failNext(operation: string, error: Error) {
      if (typeof operation !== "string" || operation === "") throw new TypeError("Invalid failNext operation: expected a non-empty string");
      assertError(error, "injected failure");
      send({ operation: "failNext", target: operation, message: error.message });
    },
    failJob(jobId: string, error: Error, options?: { atBytes?: number }) {
      assertError(error, "injected failure");
      const atBytes = options?.atBytes === undefined ? undefined : assertBytes(options.atBytes, "atBytes");
      const state = daemon.stateOf(jobId);
      if (state === undefined) throw new NotFoundError("job", String(jobId), { driver: "remote" });
      if (TERMINAL_JOB_STATES.includes(state)) throw new StateError(`Cannot fail job "${jobId}": it is ${state}`, { state, driver: "remote" });
      send({ operation: "failJob", id: jobId, message: error.message, ...(atBytes === undefined ? {} : { atBytes }) });
    },
    async load(fixture: unknown) {
      await daemon.ext.testing({ operation: "load", fixture }, { operation: "load a fixture" });
    },
    async guestWrite(domain: string, disk: string, offset: number, bytes: Uint8Array) {
      const base64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
      await daemon.ext.testing({ operation: "guestWrite", domain, disk, offset: assertBytes(offset, "offset"), base64 }, { objectName: domain, operation: `write to disk "${disk}" of domain "${domain}"` });
    },
  });
}
