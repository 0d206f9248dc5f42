/**
 * Giving the event loop a turn from work whose every await resolves at once: a copy between two
 * in-memory volumes runs on resolved promises only, so without a turn now and then it holds the whole
 * process (every other client of a daemon, every timer) until it ends.
 *
 * The turns are counted, so the virtual clock can wait for them: a job its `advance()` wakes may take
 * a turn before it reaches its next timed wait, and `advance()` settles only once no turn is pending,
 * so virtual time stays exact (see `createVirtualClock`).
 *
 * @module
 */

type Schedule = (run: () => void) => unknown;

/** `setImmediate` where there is one (Node, Deno): Node's `setTimeout(0)` waits a whole millisecond. */
const schedule: Schedule = (() => {
  const immediate = (globalThis as { setImmediate?: Schedule }).setImmediate;
  return typeof immediate === "function" ? (run: () => void) => immediate(run) : (run: () => void) => setTimeout(run, 0);
})();

let pending = 0;

/**
 * Resolves after one macrotask turn of the event loop (timers, I/O callbacks and other clients get to
 * run meanwhile).
 *
 * @returns Once the turn has come.
 * @example The turn comes after every microtask already queued
 * ```ts
 * import { yieldToEventLoop } from "./event_loop.ts";
 * const order: string[] = [];
 * const turn = yieldToEventLoop().then(() => order.push("turn"));
 * void Promise.resolve().then(() => order.push("microtask"));
 * await turn;
 * if (order.join() !== "microtask,turn") throw new Error(order.join());
 * ```
 */
export function yieldToEventLoop(): Promise<void> {
  pending++;
  return new Promise<void>((resolve) =>
    schedule(() => {
      pending--;
      resolve();
    }));
}

/**
 * How many {@linkcode yieldToEventLoop} turns are waiting: the virtual clock settles only at 0.
 *
 * @returns The count.
 * @example
 * ```ts
 * import { pendingYields, yieldToEventLoop } from "./event_loop.ts";
 * const turn = yieldToEventLoop();
 * if (pendingYields() < 1) throw new Error("unexpected");
 * await turn;
 * ```
 */
export function pendingYields(): number {
  return pending;
}

/**
 * Decides when a long loop takes a turn: after `everyBytes` of work or `everyMs` of real time since
 * the last turn, whichever comes first. Bytes make it certain for any large copy, time bounds how long
 * others wait behind many small steps.
 *
 * @example
 * ```ts
 * import { YieldPacer } from "./event_loop.ts";
 * const pacer = new YieldPacer(4, 60_000);
 * let turns = 0;
 * for (let i = 0; i < 10; i++) if (pacer.due(1)) { turns++; await pacer.yield(); }
 * if (turns !== 2) throw new Error(String(turns));
 * ```
 */
export class YieldPacer {
  readonly #everyBytes: number;
  readonly #everyMs: number;
  #bytes = 0;
  #since = performance.now();

  /**
   * @param everyBytes Work between two turns.
   * @param everyMs Real time between two turns.
   */
  constructor(everyBytes: number, everyMs: number) {
    this.#everyBytes = everyBytes;
    this.#everyMs = everyMs;
  }

  /**
   * Counts work done; true when a turn is due.
   *
   * @param bytes The work just done (0 for a step that cost none).
   */
  due(bytes: number): boolean {
    this.#bytes += bytes;
    return this.#bytes >= this.#everyBytes || performance.now() - this.#since >= this.#everyMs;
  }

  /** Takes the turn and starts counting again. */
  async yield(): Promise<void> {
    await yieldToEventLoop();
    this.#bytes = 0;
    this.#since = performance.now();
  }
}
