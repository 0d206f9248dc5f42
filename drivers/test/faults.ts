/**
 * Armed failures of `conn.testing.failNext()`: the next call of an operation throws the given error.
 *
 * @module
 */

/**
 * The operations `failNext` can arm, named after the public methods. An armed operation fails the next
 * call that reaches the `test` driver or one of the connection's `memory` pools, before anything changes,
 * whichever public method made that call. Most map one to one; the shared ones are: `pool.start` also
 * refreshes the pool (`pool.refresh`), `volume.resize` and volume pulls read `volume.info`, every volume
 * job looks its volume up (`volumes.get`), and `conn.volumes.lookup` lists volumes (`volumes.list`).
 * The driver's own reads (`dom.disks()`, the disk check of `dom.start()`) spend no armed failure.
 */
export const TEST_OPERATIONS = Object.freeze(
  [
    "domains.list",
    "domains.define",
    "domain.info",
    "domain.config",
    "domain.start",
    "domain.shutdown",
    "domain.destroy",
    "domain.suspend",
    "domain.resume",
    "domain.undefine",
    "domain.disks",
    "domain.blockPull",
    "domain.blockCopy",
    "domain.blockCommit",
    "pool.build",
    "pool.start",
    "pool.stop",
    "pool.refresh",
    "pool.delete",
    "pool.info",
    "volumes.list",
    "volumes.get",
    "volumes.create",
    "volume.info",
    "volume.resize",
    "volume.delete",
  ] as const,
);

/** One of {@linkcode TEST_OPERATIONS}. */
export type TestOperation = (typeof TEST_OPERATIONS)[number];

/**
 * Failures waiting for their operation, first armed first served.
 *
 * @example
 * ```ts
 * import { FaultTable } from "./faults.ts";
 * const faults = new FaultTable();
 * faults.arm("domain.start", new Error("boom"));
 * let message = "";
 * try { faults.check("domain.start"); } catch (error) { message = (error as Error).message; }
 * faults.check("domain.start"); // disarmed after one failure
 * if (message !== "boom") throw new Error("unexpected");
 * ```
 */
export class FaultTable {
  readonly #armed = new Map<TestOperation, Error[]>();

  /**
   * Arms a failure for the next call of `operation`. Arming twice fails the next two calls.
   *
   * @param operation A name from {@linkcode TEST_OPERATIONS}.
   * @param error What that call throws.
   * @throws {TypeError} For an unknown operation (the message lists the known ones) or a non-Error.
   */
  arm(operation: string, error: Error): void {
    if (!(TEST_OPERATIONS as readonly string[]).includes(operation)) {
      throw new TypeError(`Unknown operation ${JSON.stringify(operation)}: failNext supports ${TEST_OPERATIONS.map((o) => `"${o}"`).join(", ")}`);
    }
    if (!(error instanceof Error)) throw new TypeError(`Invalid error for "${operation}": expected an Error, got ${typeof error}`);
    const queue = this.#armed.get(operation as TestOperation) ?? [];
    queue.push(error);
    this.#armed.set(operation as TestOperation, queue);
  }

  /**
   * Throws (and disarms) the failure armed for `operation`, if any.
   *
   * @param operation The operation being called.
   */
  check(operation: TestOperation): void {
    const queue = this.#armed.get(operation);
    const error = queue?.shift();
    if (queue?.length === 0) this.#armed.delete(operation);
    if (error) throw error;
  }
}
