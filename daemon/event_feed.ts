/**
 * A shared connection's events as libvirt domain events: lifecycle (eventID 0) and block job (8: by
 * disk source path, 16: by target, as BLOCK_JOB_2). Each bus event is translated once per connection
 * (its domain's UUID and id, the disk's path looked up) and then handed to every client that registered,
 * in bus order: the lookups are async, so translations run one after another on a chain.
 *
 * @module
 */
import type { Connection } from "../core/connection.ts";
import type { CoreEvent } from "../core/events.ts";
import { blockJobTypeOf } from "./block_job_kinds.ts";
import { blockJobStatusCode, lifecycleCode } from "./libvirt_codes.ts";
import type { DomainIds } from "./object_ids.ts";

/** A domain as libvirt's events name it. */
export interface EventDomain {
  /** Name. */
  readonly name: string;
  /** UUID. */
  readonly uuid: string;
  /** Running id, or -1. */
  readonly id: number;
}

/** One translated event. */
export type LibvirtDomainEvent =
  | {
    /** Lifecycle event (eventID 0). */
    readonly kind: "lifecycle";
    /** The domain. */
    readonly dom: EventDomain;
    /** `virDomainEventType`. */
    readonly event: number;
    /** Its detail code. */
    readonly detail: number;
  }
  | {
    /** Block job end or readiness (eventIDs 8 and 16). */
    readonly kind: "block-job";
    /** The domain. */
    readonly dom: EventDomain;
    /** The disk's source path (what BLOCK_JOB carries). */
    readonly path: string;
    /** The disk's target, `"vda"` (what BLOCK_JOB_2 carries). */
    readonly dst: string;
    /** `virDomainBlockJobType`. */
    readonly type: number;
    /** `virConnectDomainEventBlockJobStatus`. */
    readonly status: number;
  };

/** The feed of one shared connection. */
export interface EventFeed {
  /** Gets every translated event, in order. @returns A function that unsubscribes. */
  subscribe(listener: (event: LibvirtDomainEvent) => void): () => void;
  /** Resolves once every bus event so far has been translated and delivered (tests, clean stop). */
  settled(): Promise<void>;
  /** Stops listening to the bus. */
  close(): void;
}

/**
 * Creates the feed of a connection.
 *
 * @param conn The shared connection.
 * @param ids Its domain ids.
 * @returns The feed.
 * @example
 * ```ts
 * import { connect } from "../mod.ts";
 * import { createEventFeed } from "./event_feed.ts";
 * import { createDomainIds } from "./object_ids.ts";
 * await using conn = await connect("test:///default");
 * const ids = createDomainIds(conn);
 * const feed = createEventFeed(conn, ids);
 * const seen: string[] = [];
 * feed.subscribe((e) => seen.push(`${e.kind}:${e.dom.name}:${e.kind === "lifecycle" ? e.event : e.status}`));
 * await (await conn.domains.get("test")).suspend();
 * await feed.settled();
 * feed.close();
 * ids.close();
 * if (seen.join() !== "lifecycle:test:3") throw new Error(`unexpected ${seen}`);
 * ```
 */
export function createEventFeed(conn: Connection, ids: DomainIds): EventFeed {
  const listeners = new Set<(event: LibvirtDomainEvent) => void>();
  const uuids = new Map<string, string>();
  let chain: Promise<void> = Promise.resolve();

  const domainOf = async (name: string): Promise<EventDomain | undefined> => {
    try {
      const info = await (await conn.domains.get(name)).info();
      uuids.set(name, info.uuid);
      return { name, uuid: info.uuid, id: ids.idOf(name, info.state) };
    } catch {
      // Gone (undefined): name it by the UUID it had when last seen.
      const uuid = uuids.get(name);
      return uuid === undefined ? undefined : { name, uuid, id: -1 };
    }
  };

  const translate = async (event: CoreEvent): Promise<LibvirtDomainEvent | undefined> => {
    if (event.type.startsWith("domain:")) {
      const code = lifecycleCode(event);
      const name = (event as CoreEvent<"domain:started">).domain;
      const dom = code && (await domainOf(name));
      return dom && { kind: "lifecycle", dom, ...code };
    }
    const status = blockJobStatusCode(event.type);
    if (status === undefined) return undefined;
    const job = (event as CoreEvent<"job:completed">).job;
    const type = blockJobTypeOf(conn, job);
    const { domain, disk } = job.target;
    if (type === undefined || domain === undefined || disk === undefined) return undefined;
    const dom = await domainOf(domain);
    if (!dom) return undefined;
    let path = disk;
    try {
      path = (await (await conn.domains.get(domain)).disks()).find((d) => d.target === disk)?.path ?? disk;
    } catch {
      // The domain went away meanwhile: the target is the best name left.
    }
    return { kind: "block-job", dom, path, dst: disk, type, status };
  };

  const off = conn.events.on("*", (event) => {
    if (listeners.size === 0) return;
    if (!event.type.startsWith("domain:") && blockJobStatusCode(event.type) === undefined) return;
    chain = chain.then(async () => {
      const translated = await translate(event).catch(() => undefined);
      if (!translated) return;
      for (const listener of listeners) {
        try {
          listener(translated);
        } catch {
          // One client's failure to queue an event must not stop the others.
        }
      }
    });
  });

  return {
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    settled: () => chain,
    close: off,
  };
}
