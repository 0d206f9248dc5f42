/**
 * The commands waiting for replies, by id. Kept apart from the client so the routing rules (ids,
 * abandoned commands, id-less replies) sit in one small place.
 *
 * @module
 */
import { QmpError } from "../../../core/errors.ts";
import { QmpProtocolError } from "./errors.ts";
import type { JsonValue, QmpReplyMessage } from "./types.ts";

interface Entry {
  readonly command: string;
  readonly resolve: (value: JsonValue) => void;
  readonly reject: (error: unknown) => void;
}

/** Commands in flight. Ids are increasing integers, so the smallest id is the oldest command. */
export class PendingCommands {
  readonly #entries = new Map<number, Entry>();
  /** Commands given up on (their signal aborted) whose replies may still come and must be dropped. */
  readonly #abandoned = new Set<number>();
  #nextId = 1;

  /** How many commands wait for a reply. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Registers a command about to be sent.
   *
   * @param command Command name, for errors.
   * @param signal Aborting rejects with its reason and marks the id abandoned.
   * @returns The id to send and the promise of the result.
   */
  add(command: string, signal: AbortSignal | undefined): { id: number; result: Promise<JsonValue> } {
    const id = this.#nextId++;
    const result = new Promise<JsonValue>((resolve, reject) => {
      const onAbort = () => {
        if (!this.#entries.delete(id)) return;
        this.#abandoned.add(id);
        reject(signal!.reason);
      };
      const done = () => signal?.removeEventListener("abort", onAbort);
      this.#entries.set(id, {
        command,
        resolve: (value) => (done(), resolve(value)),
        reject: (error) => (done(), reject(error)),
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
    return { id, result };
  }

  /**
   * Settles the command a reply belongs to. A reply without an id is QEMU's answer to input it could
   * not parse; without OOB QEMU answers strictly in order, so it belongs to the oldest command.
   *
   * @param reply The reply.
   * @param inOrder Whether replies come in command order (OOB not enabled).
   * @param line The raw line, for errors.
   * @returns The command the reply settled, or `undefined` for an abandoned one.
   * @throws {QmpProtocolError} When the reply matches no command.
   */
  settle(reply: QmpReplyMessage, inOrder: boolean, line: string): string | undefined {
    let id = reply.id;
    if (id === undefined && inOrder && this.#entries.size + this.#abandoned.size > 0) {
      id = Math.min(...this.#entries.keys(), ...this.#abandoned);
    }
    if (typeof id === "number" && this.#abandoned.delete(id)) return undefined;
    const entry = typeof id === "number" ? this.#entries.get(id) : undefined;
    if (!entry) {
      const which = id === undefined ? "without an id" : `to an unknown command id ${JSON.stringify(id)}`;
      throw new QmpProtocolError(`QMP peer sent a reply ${which}`, { line });
    }
    this.#entries.delete(id as number);
    if ("error" in reply) {
      entry.reject(new QmpError({ errorClass: reply.error.class, desc: reply.error.desc, command: entry.command, driver: "qemu" }));
    } else {
      entry.resolve(reply.return);
    }
    return entry.command;
  }

  /**
   * Rejects every waiting command and forgets the abandoned ones.
   *
   * @param errorFor Builds the error for one command.
   */
  failAll(errorFor: (command: string) => Error): void {
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    this.#abandoned.clear();
    for (const entry of entries) entry.reject(errorFor(entry.command));
  }
}
