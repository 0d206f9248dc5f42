/**
 * Identities libvirt has and virtkit does not: the numeric id of a running domain, and a UUID for each
 * storage pool. Both are kept per shared connection, so every client sees the same numbers.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Connection } from "../core/connection.ts";
import type { DomainState } from "../core/domain.ts";

/** Running-domain ids of one connection, as libvirt numbers them (from 1; -1 when inactive). */
export interface DomainIds {
  /** The id for a domain in `state`: a stable positive number while it runs, -1 when it does not. */
  idOf(name: string, state: DomainState): number;
  /** The running domain with that id, if any. */
  nameOf(id: number): string | undefined;
  /** Stops following the connection's events. */
  close(): void;
}

/**
 * Follows a connection's domain events to number its running domains. A domain gets an id when it is
 * first seen running (or paused) and keeps it until it stops; a restart gets a new one, as in libvirt.
 *
 * @param conn The shared connection.
 * @returns The id table.
 * @example
 * ```ts
 * import { connect } from "../mod.ts";
 * import { createDomainIds } from "./object_ids.ts";
 * await using conn = await connect("test:///default");
 * const ids = createDomainIds(conn);
 * const first = ids.idOf("test", "running");
 * await (await conn.domains.get("test")).destroy();
 * await (await conn.domains.get("test")).start();
 * const second = ids.idOf("test", "running");
 * ids.close();
 * if (first !== 1 || second !== 2 || ids.idOf("x", "shutoff") !== -1) throw new Error(`unexpected ${first} ${second}`);
 * ```
 */
export function createDomainIds(conn: Connection): DomainIds {
  const byName = new Map<string, number>();
  const byId = new Map<number, string>();
  let next = 1;
  const drop = (name: string) => {
    const id = byName.get(name);
    if (id === undefined) return;
    byName.delete(name);
    byId.delete(id);
  };
  const offs = [
    conn.events.on("domain:stopped", (e) => drop(e.domain)),
    conn.events.on("domain:crashed", (e) => drop(e.domain)),
    conn.events.on("domain:undefined", (e) => drop(e.domain)),
  ];
  return {
    idOf(name, state) {
      if (state === "shutoff" || state === "crashed") {
        drop(name);
        return -1;
      }
      let id = byName.get(name);
      if (id === undefined) {
        id = next++;
        byName.set(name, id);
        byId.set(id, name);
      }
      return id;
    },
    nameOf(id) {
      return byId.get(id);
    },
    close() {
      for (const off of offs) off();
    },
  };
}

/**
 * A stable UUID for a pool name (virtkit pools have none; libvirt's do): the first 16 bytes of a SHA-256
 * of the name, stamped as an RFC 4122 version 8 (custom) UUID. The same name always gives the same UUID,
 * across clients and daemon restarts.
 *
 * @param name The pool name.
 * @returns A UUID string.
 * @example
 * ```ts
 * import { poolUuid } from "./object_ids.ts";
 * if (poolUuid("default") !== poolUuid("default") || poolUuid("a") === poolUuid("b")) throw new Error("unexpected");
 * if (!/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(poolUuid("x"))) throw new Error("not a UUID");
 * ```
 */
export function poolUuid(name: string): string {
  const bytes = createHash("sha256").update(`virtkit-pool:${name}`).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
