/**
 * One running QEMU: its QMP connection, its process, its run state as QMP events report it, and the end
 * of it (asked for, or a crash).
 *
 * @module
 */
import process from "node:process";
import type { Clock } from "../../core/clock.ts";
import type { DomainState } from "../../core/domain.ts";
import type { EventBus } from "../../core/event_bus.ts";
import type { QmpClient } from "./qmp/client.ts";
import { waitForExit } from "./process.ts";
import type { RunDisk } from "./state_store.ts";

/** How a QEMU ended. */
export interface InstanceEnd {
  /** Whether virtkit (or the guest, through a `SHUTDOWN` event) asked for it; otherwise it crashed. */
  readonly expected: boolean;
  /** What happened, for messages (`"exited with signal SIGKILL"`). */
  readonly why: string;
}

/** What an {@linkcode Instance} is built from. */
export interface InstanceOptions {
  /** Domain name. */
  readonly name: string;
  /** Process id. */
  readonly pid: number;
  /** Its QMP socket path. */
  readonly socket: string;
  /** Negotiated QMP client. */
  readonly qmp: QmpClient;
  /** Disks with node names. */
  readonly disks: RunDisk[];
  /** The exit status, when QEMU is this process's child. */
  readonly exited?: Promise<number | string>;
  /** The connection's bus. */
  readonly bus: EventBus;
  /** The connection's clock. */
  readonly clock: Clock;
  /** State to start from. */
  readonly state: "running" | "paused";
}

/**
 * A running domain. Run-state changes come from QMP events (`STOP`, `RESUME`, `SHUTDOWN`) and from the
 * verbs themselves, whichever is first; each change emits its domain event once. Every QMP event is
 * also passed through as a `qmp:event` on the connection's bus.
 *
 * @example A QMP connection that ends without being asked to is a crash
 * ```ts
 * import { Instance } from "./instance.ts";
 * import { QmpClient } from "./qmp/client.ts";
 * import { createFakeQmpPeer } from "./qmp/testing/mod.ts";
 * import { createRealClock } from "virtkit";
 * import { createEventBus } from "../../core/event_bus.ts";
 * const clock = createRealClock();
 * const bus = createEventBus({ clock });
 * const peer = createFakeQmpPeer();
 * const qmp = await QmpClient.connect(peer.transport);
 * const inst = new Instance({ name: "vm", pid: 2 ** 22 + 1, socket: "/x.qmp", qmp, disks: [], bus, clock, state: "running" });
 * peer.hangUp();
 * await inst.ended;
 * if (inst.state !== "crashed") throw new Error("unexpected");
 * ```
 */
export class Instance {
  /** Domain name. */
  readonly name: string;
  /** Process id. */
  readonly pid: number;
  /** Its QMP socket path. */
  readonly socket: string;
  /** The QMP client. */
  readonly qmp: QmpClient;
  /** Disks with node names (updated when a pull drops layers). */
  disks: RunDisk[];
  /** Resolves once the process has ended and the end has been reported. */
  readonly ended: Promise<InstanceEnd>;
  readonly #bus: EventBus;
  readonly #clock: Clock;
  readonly #endHooks = new Set<(end: InstanceEnd) => void>();
  #state: "running" | "paused";
  #expectExit: string | undefined;
  #end: InstanceEnd | undefined;
  #silent = false;

  /**
   * Wires the QMP run-state events and starts watching for the process's end.
   *
   * @param options What it is built from.
   */
  constructor(options: InstanceOptions) {
    this.name = options.name;
    this.pid = options.pid;
    this.socket = options.socket;
    this.qmp = options.qmp;
    this.disks = options.disks;
    this.#bus = options.bus;
    this.#clock = options.clock;
    this.#state = options.state;
    // Every QMP event is passed through first, so a listener sees it before what virtkit makes of it.
    this.qmp.on("*", (e) => this.#bus.emit("qmp:event", { domain: this.name, name: e.event, data: e.data }));
    this.qmp.on("STOP", () => this.markState("paused"));
    this.qmp.on("RESUME", () => this.markState("running"));
    this.qmp.on("SHUTDOWN", () => {
      this.#expectExit ??= "shutdown";
    });
    this.ended = this.#watch(options.exited);
  }

  /** The run state as last reported, or `shutoff`/`crashed` once ended. */
  get state(): DomainState {
    if (this.#end) return this.#end.expected ? "shutoff" : "crashed";
    return this.#state;
  }

  /** Whether QEMU is on its way out (a `SHUTDOWN` event came, or virtkit asked it to quit). */
  get exiting(): boolean {
    return this.#expectExit !== undefined;
  }

  /** Whether the process has ended. */
  get isEnded(): boolean {
    return this.#end !== undefined;
  }

  /** Records a run-state change and emits its event, once. */
  markState(state: "running" | "paused"): void {
    if (this.#end || this.#state === state) return;
    this.#state = state;
    this.#bus.emit(state === "paused" ? "domain:suspended" : "domain:resumed", {
      domain: this.name,
      reason: state === "paused" ? "paused" : "unpaused",
    });
  }

  /** Says that the coming exit is asked for, and why (`"destroyed"`, `"shutdown"`). */
  expectExit(reason: string): void {
    this.#expectExit = reason;
  }

  /** Calls `hook` when the process ends (before the domain event). Returns the unsubscribe function. */
  onEnd(hook: (end: InstanceEnd) => void): () => void {
    this.#endHooks.add(hook);
    return () => this.#endHooks.delete(hook);
  }

  /** Stops watching without reporting anything: the connection closes and QEMU keeps running. */
  async detach(): Promise<void> {
    this.#silent = true;
    await this.qmp.close();
  }

  /** Sends SIGKILL (when the process still exists). */
  kill(): void {
    try {
      process.kill(this.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }

  async #watch(exited: Promise<number | string> | undefined): Promise<InstanceEnd> {
    // QMP closes when QEMU ends; a child's exit status is more precise, so take it when there is one.
    const status = await Promise.race([
      this.qmp.closed.then(() => undefined, () => undefined),
      exited ?? new Promise<never>(() => {}),
    ]);
    if (this.#silent) return new Promise<InstanceEnd>(() => {});
    let code: number | string | undefined = status;
    if (code === undefined && exited) {
      // The socket went first: the exit status follows within moments.
      code = await Promise.race([exited, this.#clock.sleep(2000).then(() => undefined)]);
    }
    if (this.#silent) return new Promise<InstanceEnd>(() => {});
    if (code === undefined && !(await waitForExit(this.pid, this.#clock, 2000))) {
      // QMP is gone but the process is not: it can no longer be managed, so end it.
      this.kill();
      await waitForExit(this.pid, this.#clock, 2000);
      code = "SIGKILL";
    }
    void this.qmp.close();
    const why = code === undefined ? "exited" : typeof code === "string" ? `was killed by ${code}` : `exited with status ${code}`;
    const end: InstanceEnd = { expected: this.#expectExit !== undefined, why: `QEMU (pid ${this.pid}) ${why}` };
    this.#end = end;
    for (const hook of [...this.#endHooks]) {
      try {
        hook(end);
      } catch {
        // a hook's failure must not stop the others
      }
    }
    this.#bus.emit(end.expected ? "domain:stopped" : "domain:crashed", {
      domain: this.name,
      reason: this.#expectExit ?? "crashed",
    });
    return end;
  }
}
