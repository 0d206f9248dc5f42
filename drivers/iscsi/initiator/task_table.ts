/**
 * The session's tasks by initiator task tag: tags handed out in turn, a bounded wait per task, a caller
 * that stops waiting (its signal) without the tag being reused before the target answers.
 *
 * @module
 */
import type { ScsiRequest, Task } from "./task.ts";

/** What a new task needs. */
export interface TaskSpec {
  /** What it is. */
  readonly kind: Task["kind"];
  /** Settles the caller's promise. */
  readonly resolve: (value: unknown) => void;
  /** Rejects it. */
  readonly reject: (error: unknown) => void;
  /** The SCSI request, for SCSI tasks. */
  readonly request?: ScsiRequest;
  /** How long the target may take. */
  readonly timeoutMs: number;
}

/**
 * Tasks in flight.
 *
 * @example A task the caller gave up on keeps its tag until the target's late answer comes
 * ```ts
 * import { TaskTable } from "./task_table.ts";
 * const table = new TaskTable(() => {}, 1000);
 * const controller = new AbortController();
 * let rejected = false;
 * const task = table.create({ kind: "scsi", resolve: () => {}, reject: () => (rejected = true), timeoutMs: 1000,
 *   request: { lun: 0, cdb: new Uint8Array(6), signal: controller.signal } });
 * controller.abort();
 * const stillReserved = table.get(task.itt) === task;
 * table.answer(task, "late");
 * if (!rejected || !stillReserved || table.get(task.itt) !== undefined) throw new Error("unexpected");
 * ```
 */
export class TaskTable {
  readonly #tasks = new Map<number, Task>();
  readonly #onTimeout: (what: string) => void;
  readonly #lingerMs: number;
  #nextItt = 1;

  /**
   * @param onTimeout Called when a task gets no answer in time (the session ends then, at ERL 0).
   * @param lingerMs How long a tag stays reserved after its caller went away.
   */
  constructor(onTimeout: (what: string) => void, lingerMs: number) {
    this.#onTimeout = onTimeout;
    this.#lingerMs = lingerMs;
  }

  /** The task with a tag, if it is in flight. */
  get(itt: number): Task | undefined {
    return this.#tasks.get(itt);
  }

  /** Whether a task is still in flight. */
  has(task: Task): boolean {
    return this.#tasks.get(task.itt) === task;
  }

  /** Makes a task with a free tag and starts its timer. */
  create(spec: TaskSpec): Task {
    let itt = this.#nextItt;
    this.#nextItt = this.#nextItt >= 0x7fffffff ? 1 : this.#nextItt + 1;
    while (this.#tasks.has(itt)) itt = itt >= 0x7fffffff ? 1 : itt + 1;
    const request = spec.request;
    const task: Task = { itt, kind: spec.kind, resolve: spec.resolve, reject: spec.reject, lun: request?.lun ?? 0, readBuffer: request?.read, write: request?.write, received: 0, textData: [] };
    this.#tasks.set(itt, task);
    const what = spec.kind === "scsi" ? `SCSI command 0x${request!.cdb[0]!.toString(16)}` : spec.kind;
    task.timer = setTimeout(() => this.#onTimeout(`${what} got no answer within ${spec.timeoutMs} ms`), spec.timeoutMs);
    const signal = request?.signal;
    if (signal) {
      // The command cannot be taken back (ERL 0 has no cheap abort), but the caller stops waiting and
      // its buffer is no longer written: late Data-In for this task is read into scratch space.
      const onAbort = () => this.fail(task, signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      task.unlisten = () => signal.removeEventListener("abort", onAbort);
    }
    return task;
  }

  /** The target answered: resolves the caller, or forgets a task whose caller went away. */
  answer(task: Task, value: unknown): void {
    if (!this.has(task)) return;
    this.#forget(task);
    if (!task.abandoned) task.resolve(value);
  }

  /**
   * Rejects the caller now; the tag stays reserved (for at most the linger time) so that a late answer
   * is recognised and dropped.
   */
  fail(task: Task, error: unknown): void {
    if (!this.has(task) || task.abandoned) return;
    clearTimeout(task.timer);
    task.unlisten?.();
    // Late Data-In must not land in a buffer the caller owns again. Write data stays: the target may
    // still ask for it (R2T), and an unanswered R2T would hold its task forever; the range written is
    // undefined after an aborted write anyway, as on any disk.
    task.readBuffer = undefined;
    task.abandoned = true;
    task.timer = setTimeout(() => this.#forget(task), this.#lingerMs);
    task.reject(error);
  }

  /** Rejects every task still waited for and forgets them all (the session ended). */
  rejectAll(error: unknown): void {
    for (const task of [...this.#tasks.values()]) {
      clearTimeout(task.timer);
      task.unlisten?.();
      if (!task.abandoned) task.reject(error);
    }
    this.#tasks.clear();
  }

  #forget(task: Task): void {
    clearTimeout(task.timer);
    task.unlisten?.();
    this.#tasks.delete(task.itt);
  }
}
