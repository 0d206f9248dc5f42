/**
 * Delivery of QMP events to filtered listeners, in registration order.
 *
 * @module
 */
import { isJsonObject, jsonEqual, type JsonObject, type QmpEvent } from "./types.ts";

/** Receives one event. A listener that throws does not stop delivery to the others. */
export type QmpEventListener = (event: QmpEvent) => void;

/**
 * Which events of a name a listener wants: a predicate, or an object whose every member must equal
 * (structurally) the member of the same name in `event.data`, e.g. `{ id: "pull-1", status: "pending" }`.
 */
export type QmpEventFilter = ((event: QmpEvent) => boolean) | JsonObject;

/**
 * Whether an event passes a filter.
 *
 * @param event The event.
 * @param filter A predicate or a subset of `event.data`; absent passes everything.
 * @returns Whether it passes.
 * @example
 * ```ts
 * import { matchesEventFilter } from "./event_router.ts";
 * const event = { event: "JOB_STATUS_CHANGE", data: { id: "j1", status: "pending" }, timestamp: { seconds: 0, microseconds: 0 } };
 * if (!matchesEventFilter(event, { id: "j1" }) || matchesEventFilter(event, { id: "j2" })) throw new Error("unexpected");
 * ```
 */
export function matchesEventFilter(event: QmpEvent, filter: QmpEventFilter | undefined): boolean {
  if (filter === undefined) return true;
  if (typeof filter === "function") return filter(event);
  for (const key of Object.keys(filter)) {
    if (!Object.hasOwn(event.data, key) || !jsonEqual(event.data[key], filter[key])) return false;
  }
  return true;
}

interface Entry {
  readonly name: string;
  readonly listener: QmpEventListener;
  readonly filter: QmpEventFilter | undefined;
  active: boolean;
}

/**
 * A list of listeners keyed by event name, `"*"` for every event.
 *
 * @example
 * ```ts
 * import { QmpEventRouter } from "./event_router.ts";
 * const router = new QmpEventRouter();
 * const seen: string[] = [];
 * const off = router.add("STOP", (e) => seen.push(e.event));
 * router.dispatch({ event: "STOP", data: {}, timestamp: { seconds: 0, microseconds: 0 } }, () => {});
 * off();
 * router.dispatch({ event: "STOP", data: {}, timestamp: { seconds: 0, microseconds: 0 } }, () => {});
 * if (seen.length !== 1) throw new Error("unexpected");
 * ```
 */
export class QmpEventRouter {
  #entries: Entry[] = [];

  /** How many listeners are registered. */
  get size(): number {
    return this.#entries.length;
  }

  /**
   * Registers a listener.
   *
   * @param name Event name, or `"*"` for all.
   * @param listener Called synchronously for each matching event.
   * @param filter Optional predicate or `data` subset.
   * @returns A function that unregisters it (calling it twice is harmless).
   * @throws {TypeError} On a bad name, listener or filter.
   */
  add(name: string, listener: QmpEventListener, filter?: QmpEventFilter): () => void {
    if (typeof name !== "string" || name === "") throw new TypeError("Invalid QMP event name: expected a non-empty string");
    if (typeof listener !== "function") throw new TypeError(`Invalid listener for QMP event "${name}": expected a function`);
    if (filter !== undefined && typeof filter !== "function" && !isJsonObject(filter)) {
      throw new TypeError(`Invalid filter for QMP event "${name}": expected a function or an object`);
    }
    const entry: Entry = { name, listener, filter, active: true };
    // Copy on write: a dispatch in progress keeps iterating the list it started with.
    this.#entries = [...this.#entries, entry];
    return () => {
      entry.active = false;
      this.#entries = this.#entries.filter((e) => e !== entry);
    };
  }

  /**
   * Calls every listener registered for this event's name or `"*"` whose filter passes.
   *
   * @param event The event.
   * @param onError Gets whatever a listener or filter throws.
   */
  dispatch(event: QmpEvent, onError: (error: unknown, event: QmpEvent) => void): void {
    for (const entry of this.#entries) {
      if (!entry.active || (entry.name !== event.event && entry.name !== "*")) continue;
      try {
        if (matchesEventFilter(event, entry.filter)) entry.listener(event);
      } catch (error) {
        onError(error, event);
      }
    }
  }
}
