/**
 * The `test` driver's domains: definitions and run states with libvirt's transition rules, and the
 * domain events each transition emits.
 *
 * @module
 */
import { ConflictError, NotFoundError, StateError } from "../../core/errors.ts";
import type { DiskConfig, DomainConfig, DomainInfo, DomainState } from "../../core/domain.ts";
import type { DiskSource } from "../../core/driver.ts";
import type { DomainEventPayload } from "../../core/events.ts";
import type { EventBus } from "../../core/event_bus.ts";

const DRIVER = "test";

type DomainEventType = "domain:started" | "domain:stopped" | "domain:suspended" | "domain:resumed";

/** One transition: the states it starts from, where it leads, the event and reason, and the refusal. */
interface Transition {
  verb: string;
  from: readonly DomainState[];
  to: DomainState;
  event: DomainEventType;
  reason: string;
  refuse: (state: DomainState) => string;
}

const notRunning = () => "it is not running";

const TRANSITIONS = {
  start: {
    verb: "start",
    from: ["shutoff", "crashed"],
    to: "running",
    event: "domain:started",
    reason: "booted",
    refuse: () => "it is already running",
  },
  shutdown: { verb: "shut down", from: ["running", "paused"], to: "shutoff", event: "domain:stopped", reason: "shutdown", refuse: notRunning },
  destroy: {
    verb: "destroy",
    from: ["running", "paused", "crashed"],
    to: "shutoff",
    event: "domain:stopped",
    reason: "destroyed",
    refuse: notRunning,
  },
  suspend: {
    verb: "suspend",
    from: ["running"],
    to: "paused",
    event: "domain:suspended",
    reason: "paused",
    refuse: (state) => (state === "paused" ? "it is already paused" : "it is not running"),
  },
  resume: { verb: "resume", from: ["paused"], to: "running", event: "domain:resumed", reason: "unpaused", refuse: () => "it is not paused" },
} satisfies Record<string, Transition>;

/** Names of the run-state transitions {@linkcode DomainTable.transition} knows. */
export type DomainTransition = keyof typeof TRANSITIONS;

interface DomainRecord {
  config: DomainConfig & { uuid: string };
  state: DomainState;
}

/**
 * The domains of one `test` connection, in definition order. Every change emits its domain event on the
 * connection's bus (`reason` as libvirt names it: `added`, `removed`, `booted`, `shutdown`, `destroyed`,
 * `paused`, `unpaused`).
 *
 * @example
 * ```ts
 * import { DomainTable } from "./domains.ts";
 * const events: string[] = [];
 * const bus = { emit: (type: string) => events.push(type) } as unknown as import("../../core/event_bus.ts").EventBus;
 * const table = new DomainTable(bus);
 * table.define({ name: "web1", vcpus: 1, memoryBytes: 1 << 30, disks: [] });
 * table.transition("web1", "start");
 * if (table.info("web1").state !== "running" || events.join() !== "domain:defined,domain:started") throw new Error("unexpected");
 * ```
 */
export class DomainTable {
  readonly #bus: EventBus;
  readonly #domains = new Map<string, DomainRecord>();

  /**
   * @param bus Where domain events go.
   */
  constructor(bus: EventBus) {
    this.#bus = bus;
  }

  /** Names of every domain, in definition order. */
  names(): string[] {
    return [...this.#domains.keys()];
  }

  /** Whether a domain of that name exists. */
  has(name: string): boolean {
    return this.#domains.has(name);
  }

  /**
   * A domain's state, vCPUs and memory.
   *
   * @throws {NotFoundError} When it is not defined.
   */
  info(name: string): DomainInfo {
    const { config, state } = this.#get(name);
    return { name, uuid: config.uuid, state, vcpus: config.vcpus, memoryBytes: config.memoryBytes };
  }

  /**
   * A copy of a domain's definition.
   *
   * @throws {NotFoundError} When it is not defined.
   */
  config(name: string): DomainConfig & { uuid: string } {
    return structuredClone(this.#get(name).config);
  }

  /**
   * Checks that `config` could be defined now: name and UUID free (its fields were checked by the
   * domain config schema before they reached the driver).
   *
   * @throws {ConflictError} When the name or the UUID is taken.
   */
  checkDefinable(config: DomainConfig): void {
    if (this.#domains.has(config.name)) {
      throw new ConflictError(`Cannot define domain "${config.name}": a domain with that name exists`, { driver: DRIVER });
    }
    const uuid = config.uuid?.toLowerCase();
    const owner = uuid === undefined ? undefined : [...this.#domains.values()].find((d) => d.config.uuid === uuid);
    if (owner) {
      throw new ConflictError(`Cannot define domain "${config.name}": UUID ${uuid} belongs to domain "${owner.config.name}"`, {
        driver: DRIVER,
      });
    }
  }

  /**
   * Defines a domain (a UUID is generated when absent) and emits `domain:defined`.
   *
   * @param config The definition; copied.
   * @param state Its initial state (fixtures may define running domains).
   * @throws {TypeError} For malformed disks.
   * @throws {ConflictError} When the name or the UUID is taken.
   */
  define(config: DomainConfig, state: DomainState = "shutoff"): void {
    this.checkDefinable(config);
    const copy = structuredClone(config);
    const uuid = (config.uuid ?? crypto.randomUUID()).toLowerCase();
    this.#domains.set(config.name, { config: { ...copy, uuid }, state });
    this.#emit("domain:defined", { domain: config.name, reason: "added" });
  }

  /**
   * Removes a shut-off domain's definition and emits `domain:undefined`.
   *
   * @throws {StateError} Unless the domain is shut off.
   */
  undefine(name: string): void {
    const { state } = this.#get(name);
    if (state !== "shutoff") {
      throw new StateError(`Cannot undefine domain "${name}": it is ${state === "crashed" ? "crashed" : "running"}`, { state, driver: DRIVER });
    }
    this.#domains.delete(name);
    this.#emit("domain:undefined", { domain: name, reason: "removed" });
  }

  /**
   * Checks that `transition` is allowed from the domain's current state, without changing anything.
   *
   * @throws {NotFoundError} When the domain is not defined.
   * @throws {StateError} Naming the domain and why, such as `Cannot start domain "web1": it is already running`.
   */
  check(name: string, transition: DomainTransition): void {
    const t: Transition = TRANSITIONS[transition];
    const { state } = this.#get(name);
    if (!t.from.includes(state)) throw new StateError(`Cannot ${t.verb} domain "${name}": ${t.refuse(state)}`, { state, driver: DRIVER });
  }

  /**
   * Performs a run-state transition and emits its event.
   *
   * @throws {NotFoundError} When the domain is not defined.
   * @throws {StateError} When the transition is not allowed from the current state.
   */
  transition(name: string, transition: DomainTransition): void {
    this.check(name, transition);
    const t: Transition = TRANSITIONS[transition];
    this.#get(name).state = t.to;
    this.#emit(t.event, { domain: name, reason: t.reason });
  }

  /**
   * Points a disk's definition at another image (the pivot of a block copy or active commit).
   *
   * @param name Domain name.
   * @param target Disk target.
   * @param source The new volume or path, with its format.
   * @throws {NotFoundError} For an unknown domain or disk.
   */
  setDiskSource(name: string, target: string, source: DiskSource): void {
    const { config } = this.#get(name);
    const index = config.disks.findIndex((d) => d.target === target);
    if (index < 0) throw new NotFoundError("disk", target, { driver: DRIVER, detail: `domain "${name}" has no such disk` });
    const { volume: _volume, path: _path, ...rest } = config.disks[index]!;
    config.disks[index] = "volume" in source
      ? { ...rest, volume: { ...source.volume }, format: source.format }
      : { ...rest, path: source.path, format: source.format };
    this.#emit("domain:defined", { domain: name, reason: "updated" });
  }

  #get(name: string): DomainRecord {
    const record = this.#domains.get(name);
    if (!record) throw new NotFoundError("domain", name, { driver: DRIVER });
    return record;
  }

  #emit(type: DomainEventType | "domain:defined" | "domain:undefined", payload: DomainEventPayload): void {
    this.#bus.emit(type, payload);
  }
}
