/**
 * The domain handles of one shared connection, kept between calls. Every domain procedure names its
 * domain, and `conn.domains.get()` would build a new handle (and ask the driver once more) for each
 * call; a handle holds only the name and UUID and asks the driver on every method, so one per name
 * serves every client. Beside it the table keeps the domain's disk targets, which only a definition sets
 * (virtkit has no disk hot-plug), so the block job calls that name a disk (`blockjob --info` polls
 * every 500 ms) need not copy the whole definition each time. Both are dropped when the domain is
 * defined or undefined (a redefinition under the same name has another UUID and maybe other disks), so
 * the table holds at most one entry per defined domain.
 *
 * @module
 */
import type { Connection } from "../core/connection.ts";
import type { Domain } from "../core/domain.ts";

/** The handle table of one connection. */
export interface DomainHandles {
  /**
   * The handle of the domain `name`: the kept one, else `conn.domains.get(name)` (which checks that it
   * exists and validates the name), kept for the next call.
   *
   * @throws {NotFoundError} When no domain has that name (only when none is kept).
   */
  get(name: string): Promise<Domain>;
  /** The kept handle of `name`, if there is one: what `get` resolves to, without a wait. */
  peek(name: string): Domain | undefined;
  /**
   * The disk targets (`vda`, ...) of the domain `name`, from its definition, kept like the handle.
   *
   * @throws {NotFoundError} When no domain has that name.
   */
  diskTargets(name: string): Promise<ReadonlySet<string>>;
  /** Forgets the handle of `name` (its domain was found gone). */
  forget(name: string): void;
  /** How many handles are kept. */
  readonly size: number;
  /** Stops following the connection's events and forgets every handle. */
  close(): void;
}

/**
 * Creates the handle table of a connection.
 *
 * @param conn The shared connection.
 * @returns The table.
 * @example
 * ```ts
 * import { connect } from "../mod.ts";
 * import { createDomainHandles } from "./domain_handles.ts";
 * await using conn = await connect("test:///default");
 * const handles = createDomainHandles(conn);
 * const first = await handles.get("test");
 * if ((await handles.get("test")) !== first || handles.peek("test") !== first || handles.size !== 1) throw new Error("one handle per name");
 * if (!(await handles.diskTargets("test")).has("vda")) throw new Error("vda expected");
 * await first.destroy();
 * await first.undefine();
 * if (handles.size !== 0) throw new Error("an undefined domain's handle is dropped");
 * handles.close();
 * ```
 */
export function createDomainHandles(conn: Connection): DomainHandles {
  const byName = new Map<string, Domain>();
  const targetsByName = new Map<string, Promise<ReadonlySet<string>>>();
  // Bumped by every define and undefine: a handle fetched across one may be of the old definition.
  let generation = 0;
  const forget = (name: string) => {
    generation++;
    byName.delete(name);
    targetsByName.delete(name);
  };
  const offs = [
    conn.events.on("domain:defined", (e) => forget(e.domain)),
    conn.events.on("domain:undefined", (e) => forget(e.domain)),
  ];
  const get = async (name: string) => {
    const kept = byName.get(name);
    if (kept) return kept;
    const before = generation;
    const dom = await conn.domains.get(name);
    if (generation === before) byName.set(name, dom);
    return dom;
  };
  return {
    get,
    peek: (name) => byName.get(name),
    diskTargets(name) {
      let targets = targetsByName.get(name);
      if (!targets) {
        const before = generation;
        targets = get(name).then(async (dom) => new Set((await dom.config()).disks.map((d) => d.target)));
        if (generation === before) {
          const kept = targets;
          targetsByName.set(name, kept);
          // A failed read is not kept: the next call asks again.
          kept.catch(() => targetsByName.get(name) === kept && targetsByName.delete(name));
        }
      }
      return targets;
    },
    forget,
    get size() {
      return byName.size;
    },
    close() {
      for (const off of offs) off();
      byName.clear();
      targetsByName.clear();
    },
  };
}
