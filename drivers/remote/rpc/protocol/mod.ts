/**
 * Every procedure declaration of the REMOTE and KEEPALIVE programs virtkit speaks, by area, plus a
 * table by number for a server's dispatch.
 *
 * @example
 * ```ts
 * import { REMOTE_PROCEDURES } from "./mod.ts";
 * if (REMOTE_PROCEDURES.get(23)?.name !== "DOMAIN_LOOKUP_BY_NAME") throw new Error("unexpected");
 * ```
 *
 * @module
 */
import type { Procedure } from "./common.ts";
import * as connect from "./connect.ts";
import * as domain from "./domain.ts";
import * as events from "./events.ts";
import * as storage from "./storage.ts";

export * from "./common.ts";
export * from "./connect.ts";
export * from "./domain.ts";
export * from "./events.ts";
export * from "./keepalive.ts";
export * from "./storage.ts";

function table(...modules: Array<Record<string, unknown>>): ReadonlyMap<number, Procedure<unknown, unknown>> {
  const map = new Map<number, Procedure<unknown, unknown>>();
  for (const m of modules) {
    for (const value of Object.values(m)) {
      if (typeof value !== "object" || value === null || !("number" in value) || !("args" in value)) continue;
      const p = value as Procedure<unknown, unknown>;
      const held = map.get(p.number);
      if (held && held !== p) throw new Error(`procedure ${p.number} is declared twice (${held.name}, ${p.name})`);
      map.set(p.number, p);
    }
  }
  return map;
}

/** REMOTE program procedures by number. */
export const REMOTE_PROCEDURES: ReadonlyMap<number, Procedure<unknown, unknown>> = table(connect, domain, storage, events);
