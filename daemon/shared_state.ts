/**
 * What the daemon keeps beside each shared connection, once for all its clients: running-domain ids,
 * the domain handles every call looks up, and the libvirt event feed. Kept in a WeakMap, so it lives exactly as long as the connection does.
 *
 * @module
 */
import type { Connection } from "../core/connection.ts";
import { createDomainHandles, type DomainHandles } from "./domain_handles.ts";
import { createEventFeed, type EventFeed } from "./event_feed.ts";
import { createDomainIds, type DomainIds } from "./object_ids.ts";

/** The daemon's state of one shared connection. */
export interface SharedState {
  /** Running-domain ids. */
  readonly ids: DomainIds;
  /** Domain handles by name. */
  readonly domains: DomainHandles;
  /** Domain events in libvirt's terms. */
  readonly feed: EventFeed;
}

const STATES = new WeakMap<Connection, SharedState>();

/**
 * The shared state of a connection, made at first use.
 *
 * @param conn A connection of the table.
 * @returns Its state; the same object for every client.
 * @example
 * ```ts
 * import { connect } from "../mod.ts";
 * import { sharedStateOf } from "./shared_state.ts";
 * await using conn = await connect("test:///default");
 * if (sharedStateOf(conn) !== sharedStateOf(conn)) throw new Error("one state per connection");
 * ```
 */
export function sharedStateOf(conn: Connection): SharedState {
  let state = STATES.get(conn);
  if (!state) {
    const ids = createDomainIds(conn);
    state = { ids, domains: createDomainHandles(conn), feed: createEventFeed(conn, ids) };
    STATES.set(conn, state);
  }
  return state;
}
