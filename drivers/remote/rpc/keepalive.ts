/**
 * libvirt's keepalive from the client's side: after `intervalMs` without a byte from the peer, send a
 * PING; after `count` PINGs without an answer (any byte counts), the peer is dead. The client answers
 * the peer's PINGs itself (client.ts); this is only the watch on silence.
 *
 * @module
 */

/** What the watch does when the peer is silent. */
export interface KeepaliveActions {
  /** Sends one PING. */
  ping(): void;
  /** The peer did not answer `count` PINGs: close the connection with this reason. */
  dead(reason: string): void;
}

/**
 * A watch on the peer's silence (libvirt's keepalive scheme).
 *
 * @example
 * ```ts
 * import { KeepaliveWatch } from "./keepalive.ts";
 * const sent: string[] = [];
 * const watch = new KeepaliveWatch({ ping: () => sent.push("ping"), dead: (why) => sent.push(why) });
 * watch.start(10, 1);
 * await new Promise((done) => setTimeout(done, 100));
 * watch.stop();
 * if (sent[0] !== "ping" || !sent[1]?.includes("no answer to 1 keepalive ping")) throw new Error(sent.join());
 * ```
 */
export class KeepaliveWatch {
  readonly #actions: KeepaliveActions;
  #timer: ReturnType<typeof setInterval> | undefined;
  #lastHeardMs = Date.now();
  #unansweredPings = 0;

  /** @param actions What to do on silence. */
  constructor(actions: KeepaliveActions) {
    this.#actions = actions;
  }

  /** The peer sent something: it is alive, and no PING is unanswered. */
  heard(): void {
    this.#lastHeardMs = Date.now();
    this.#unansweredPings = 0;
  }

  /**
   * Starts (or restarts) the watch.
   *
   * @param intervalMs Silence before a PING.
   * @param count Unanswered PINGs that mean the peer is dead.
   * @throws {RangeError} For an interval that is not positive or a count below 1.
   */
  start(intervalMs: number, count: number): void {
    if (!(intervalMs > 0) || !Number.isInteger(count) || count < 1) throw new RangeError(`Invalid keepalive: interval ${intervalMs} ms, count ${count}`);
    this.stop();
    this.#timer = setInterval(() => {
      if (Date.now() - this.#lastHeardMs < intervalMs) return;
      if (this.#unansweredPings >= count) {
        this.stop();
        return this.#actions.dead(`no answer to ${count} keepalive ping${count === 1 ? "" : "s"} (${count * intervalMs} ms)`);
      }
      this.#unansweredPings++;
      this.#actions.ping();
    }, intervalMs);
    // A keepalive timer alone must not keep a process alive.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /** Stops the watch. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
