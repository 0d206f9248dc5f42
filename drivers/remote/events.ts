/**
 * libvirt's event callbacks onto `conn.events`: one LIFECYCLE and one BLOCK_JOB_2 registration for all
 * domains, and one LIFECYCLE and one REFRESH registration for all pools, made when the connection opens
 * and dropped when it closes. Lifecycle events become `domain:*` and `pool:*` events (with `seq` from the
 * bus, like every other driver's); BLOCK_JOB_2 events go to the block job of that domain and disk.
 * Messages for callback ids this connection did not register are dropped, as libvirt's client does.
 *
 * @module
 */
import type { EventBus } from "../../core/event_bus.ts";
import type { RpcClient } from "./rpc/client.ts";
import type { DomainRefValue } from "./rpc/protocol/common.ts";
import {
  CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
  CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
  CONNECT_STORAGE_POOL_EVENT_DEREGISTER_ANY,
  CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY,
  DOMAIN_EVENT_BLOCK_JOB_2,
  DOMAIN_EVENT_CALLBACK_LIFECYCLE,
  DomainEventId,
  DomainLifecycle,
  PoolEventId,
  PoolLifecycle,
  STORAGE_POOL_EVENT_LIFECYCLE,
  STORAGE_POOL_EVENT_REFRESH,
} from "./rpc/protocol/events.ts";

/** `virDomainEventStoppedDetailType`, as reasons. */
const STOPPED_REASONS = ["shutdown", "destroyed", "crashed", "migrated", "saved", "failed", "snapshot"];
/** `virDomainEventDefinedDetailType`, as reasons. */
const DEFINED_REASONS = ["added", "updated", "renamed", "snapshot"];

/** What the event wiring reports besides bus events. */
export interface EventHooks {
  /** A domain's reference changed (started: new id) or vanished (undefined). */
  domainChanged(dom: DomainRefValue, event: number): void;
}

/** The registrations of one connection. */
export interface RemoteEvents {
  /** Routes BLOCK_JOB_2 events of one domain (by UUID) and disk; returns the unroute function. */
  route(uuid: string, disk: string, onStatus: (status: number) => void): () => void;
  /**
   * Waits for the next lifecycle event `event` of domain `name`, for at most `timeoutMs`. Set up before
   * the call that causes it, so virtkit can resolve a verb only once its event is on the bus (libvirt
   * may send the event after the reply).
   */
  nextLifecycle(name: string, event: number, timeoutMs?: number): { readonly seen: Promise<void>; cancel(): void };
  /** Deregisters everything (best effort). */
  close(): Promise<void>;
}

/** Longest a verb waits for its lifecycle event after libvirt's reply. */
const LIFECYCLE_WAIT_MS = 2_000;

/**
 * Registers the callbacks and starts translating.
 *
 * @param client The RPC client.
 * @param bus The connection's bus.
 * @param hooks Reference cache updates.
 * @returns The registrations.
 * @example
 * ```ts
 * import { registerEvents } from "./events.ts";
 * if (typeof registerEvents !== "function") throw new Error("unexpected");
 * ```
 */
export async function registerEvents(client: RpcClient, bus: EventBus, hooks: EventHooks): Promise<RemoteEvents> {
  const routes = new Map<string, (status: number) => void>();
  const waiters = new Set<{ name: string; event: number; resolve: () => void }>();
  /** The last lifecycle event per domain UUID: libvirt's qemu driver follows STARTED with RESUMED. */
  const lastEvent = new Map<string, number>();
  const key = (uuid: string, disk: string) => `${uuid}/${disk}`;
  const [lifecycle, blockJob] = await Promise.all([
    client.call(CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, { eventID: DomainEventId.LIFECYCLE, dom: undefined }),
    client.call(CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, { eventID: DomainEventId.BLOCK_JOB_2, dom: undefined }),
  ]);
  // Pool events need libvirt's storage driver; a daemon without it still serves domains.
  const poolIds = await Promise.all([
    client.call(CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY, { eventID: PoolEventId.LIFECYCLE, pool: undefined }).catch(() => undefined),
    client.call(CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY, { eventID: PoolEventId.REFRESH, pool: undefined }).catch(() => undefined),
  ]);
  const offs = [
    client.onMessage(DOMAIN_EVENT_CALLBACK_LIFECYCLE, ({ callbackID, msg }) => {
      if (callbackID !== lifecycle.callbackID) return;
      hooks.domainChanged(msg.dom, msg.event);
      const previous = lastEvent.get(msg.dom.uuid);
      lastEvent.set(msg.dom.uuid, msg.event);
      // QEMU starts with its CPUs stopped, and libvirt reports their first "cont" as RESUMED: virtkit's
      // domain:resumed means the end of a suspension only.
      const spurious = msg.event === DomainLifecycle.RESUMED && previous !== DomainLifecycle.SUSPENDED && previous !== DomainLifecycle.PMSUSPENDED;
      if (!spurious) emitDomain(bus, msg.dom.name, msg.event, msg.detail);
      for (const w of [...waiters]) if (w.name === msg.dom.name && w.event === msg.event) w.resolve();
    }),
    client.onMessage(DOMAIN_EVENT_BLOCK_JOB_2, (msg) => {
      if (msg.callbackID !== blockJob.callbackID) return;
      routes.get(key(msg.dom.uuid, msg.dst))?.(msg.status);
    }),
    client.onMessage(STORAGE_POOL_EVENT_LIFECYCLE, (msg) => {
      if (msg.callbackID !== poolIds[0]?.callbackID) return;
      const type = ({
        [PoolLifecycle.DEFINED]: "pool:defined",
        [PoolLifecycle.UNDEFINED]: "pool:undefined",
        [PoolLifecycle.STARTED]: "pool:started",
        [PoolLifecycle.STOPPED]: "pool:stopped",
        [PoolLifecycle.CREATED]: "pool:built",
        [PoolLifecycle.DELETED]: "pool:deleted",
      } as const)[msg.event];
      if (type) bus.emit(type, { pool: msg.pool.name });
    }),
    client.onMessage(STORAGE_POOL_EVENT_REFRESH, (msg) => {
      if (msg.callbackID === poolIds[1]?.callbackID) bus.emit("pool:refreshed", { pool: msg.pool.name });
    }),
  ];
  return {
    route(uuid, disk, onStatus) {
      const k = key(uuid, disk);
      routes.set(k, onStatus);
      return () => {
        if (routes.get(k) === onStatus) routes.delete(k);
      };
    },
    nextLifecycle(name, event, timeoutMs = LIFECYCLE_WAIT_MS) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let waiter!: { name: string; event: number; resolve: () => void };
      const seen = new Promise<void>((resolve) => {
        waiter = { name, event, resolve };
        waiters.add(waiter);
        timer = setTimeout(resolve, timeoutMs);
      }).finally(() => {
        clearTimeout(timer);
        waiters.delete(waiter);
      });
      return { seen, cancel: () => waiter.resolve() };
    },
    async close() {
      for (const w of [...waiters]) w.resolve();
      for (const off of offs) off();
      if (client.closed) return;
      await Promise.all([
        client.call(CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, lifecycle).catch(() => {}),
        client.call(CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, blockJob).catch(() => {}),
        ...poolIds.map((id) => (id ? client.call(CONNECT_STORAGE_POOL_EVENT_DEREGISTER_ANY, id).catch(() => {}) : undefined)),
      ]);
    },
  };
}

function emitDomain(bus: EventBus, domain: string, event: number, detail: number): void {
  const L = DomainLifecycle;
  switch (event) {
    case L.DEFINED:
      return void bus.emit("domain:defined", { domain, reason: DEFINED_REASONS[detail] ?? "defined" });
    case L.UNDEFINED:
      return void bus.emit("domain:undefined", { domain, reason: detail === 1 ? "renamed" : "removed" });
    case L.STARTED:
      return void bus.emit("domain:started", { domain, reason: ["booted", "migrated", "restored", "snapshot", "wakeup"][detail] ?? "booted" });
    case L.SUSPENDED:
      return void bus.emit("domain:suspended", { domain });
    case L.RESUMED:
      return void bus.emit("domain:resumed", { domain });
    case L.STOPPED: {
      const reason = STOPPED_REASONS[detail] ?? "stopped";
      if (reason === "crashed") return void bus.emit("domain:crashed", { domain, reason });
      return void bus.emit("domain:stopped", { domain, reason });
    }
    case L.CRASHED:
      return void bus.emit("domain:crashed", { domain, reason: "crashed" });
    // SHUTDOWN (the guest finished powering off) is followed by STOPPED; PMSUSPENDED has no virtkit event.
  }
}
