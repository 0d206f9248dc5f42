/**
 * Event `seq` across daemon restarts, for virtkit's program. A shared connection's bus numbers its
 * events 1, 2, ... anew in every daemon run, so on the wire a seq is `epoch * 2^32 + n`: `epoch` counts
 * the daemon's runs (kept in `--state-dir`), `n` is the bus's own seq. A client's `since` from an
 * earlier run is so recognised: it gets the events that run saved when it stopped (a bounded log,
 * written on a clean stop), then this run's from its start, and an explicit `gap` event for whatever is
 * lost in between, never silently nothing. A gap whose size is unknown (a run that crashed before it
 * could save) says `missed: -1`.
 *
 * Without a state directory nothing is saved and the epoch is random: a `since` from another run is
 * still told apart (a gap, then this run's events), but runs are not ordered.
 *
 * @module
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Connection } from "../core/connection.ts";
import type { CoreEvent, EventPattern } from "../core/events.ts";

/** Wire seqs per run: `n` stays below this (4 billion events per run). */
export const RUN_SPAN = 2 ** 32;
/** The largest epoch that keeps wire seqs safe integers. */
export const MAX_EPOCH = 2 ** 21 - 1;
/** Events saved across a restart, all runs together (the newest). */
const KEEP_EVENTS = 4096;

/** One daemon run as the saved history knows it. */
interface RunRecord {
  readonly epoch: number;
  /** The bus's last seq when the run stopped cleanly; 0 while it runs (or if it crashed). */
  readonly last: number;
  /** Whether it stopped cleanly and saved its events. */
  readonly clean: boolean;
}

interface SavedHistory {
  readonly version: 1;
  readonly runs: readonly RunRecord[];
  /** Saved events, oldest first, with their wire seqs. */
  readonly events: readonly CoreEvent[];
}

/** What a subscription is answered with: old runs' events and gaps first, then the bus from `localSince`. */
export interface ReplayPlan {
  /** Events (and gaps) of earlier runs to send first, already in wire seqs. */
  readonly before: readonly CoreEvent[];
  /** Where the bus's own replay starts (undefined: from now). */
  readonly localSince: number | undefined;
}

/** A shared connection's history. */
export interface EventHistory {
  /** This run's epoch. */
  readonly epoch: number;
  /** An event of the bus (or a gap of a subscription to it) in wire seqs. */
  toWire(event: CoreEvent): CoreEvent;
  /**
   * How to answer a subscription from a client's `since` (a wire seq).
   *
   * @throws {RangeError} For a `since` of this run beyond its newest event.
   */
  plan(since: number | undefined, types: readonly EventPattern[] | undefined): ReplayPlan;
  /** Saves this run's newest events and marks it stopped cleanly (the daemon's stop). */
  save(): Promise<void>;
}

const HISTORIES = new WeakMap<Connection, Promise<EventHistory>>();

const wire = (epoch: number, n: number) => epoch * RUN_SPAN + n;

function matcher(types: readonly EventPattern[] | undefined): (type: string) => boolean {
  if (!types) return () => true;
  return (type) => types.some((p) => p === "*" || p === type || (p.endsWith(":*") && type.startsWith(p.slice(0, -1))));
}

function gap(fromSeq: number, toSeq: number, missed: number, time: number): CoreEvent {
  return Object.freeze({ seq: toSeq, time, type: "gap", fromSeq, toSeq, missed }) as CoreEvent;
}

async function load(file: string): Promise<SavedHistory | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return undefined;
  }
  try {
    const saved = JSON.parse(text) as SavedHistory;
    if (saved.version === 1 && Array.isArray(saved.runs) && Array.isArray(saved.events)) return saved;
  } catch {
    // A torn file: start a history anew (the next run's since from before is then a gap).
  }
  return undefined;
}

async function store(file: string, history: SavedHistory): Promise<void> {
  const temporary = `${file}.${crypto.randomUUID()}.tmp`;
  await writeFile(temporary, JSON.stringify(history), { mode: 0o600 });
  await rename(temporary, file);
}

/**
 * Opens the history of a shared connection: reads the saved one, starts this run's epoch (saved at
 * once, so even a crash moves the next run on), and keeps the connection's newest events for `save()`.
 *
 * @param conn The shared connection.
 * @param options Its URI and the daemon's state directory.
 * @returns The history, also found by {@linkcode eventHistoryOf}.
 * @example
 * ```ts
 * import { connect } from "../mod.ts";
 * import { openEventHistory, RUN_SPAN } from "./event_history.ts";
 * await using conn = await connect("test:///default");
 * const history = await openEventHistory(conn, { uri: "test:///default" });
 * await (await conn.domains.get("test")).suspend();
 * const plan = history.plan(history.epoch * RUN_SPAN, undefined);
 * if (plan.localSince !== 0 || plan.before.length !== 0) throw new Error("this run's since replays the bus");
 * const other = history.plan((history.epoch === 1 ? 2 : 1) * RUN_SPAN + 5, undefined);
 * if (other.before[0]?.type !== "gap" || other.localSince !== 0) throw new Error("another run's since is a gap first");
 * ```
 */
export function openEventHistory(conn: Connection, options: { uri: string; stateDir?: string }): Promise<EventHistory> {
  const opening = createHistory(conn, options);
  HISTORIES.set(conn, opening);
  return opening;
}

async function createHistory(conn: Connection, options: { uri: string; stateDir?: string }): Promise<EventHistory> {
  const dir = options.stateDir === undefined ? undefined : join(options.stateDir, "virtkitd");
  const file = dir === undefined ? undefined : join(dir, `events-${encodeURIComponent(options.uri)}.json`);
  const saved = file === undefined ? undefined : await load(file);
  const runs: RunRecord[] = [...(saved?.runs ?? [])];
  const oldEvents: CoreEvent[] = [...(saved?.events ?? [])];
  const previous = runs.at(-1)?.epoch ?? 0;
  const epoch = file === undefined ? 1 + Math.floor(Math.random() * MAX_EPOCH) : previous >= MAX_EPOCH ? 1 : previous + 1;
  if (file !== undefined) {
    await mkdir(dir!, { recursive: true, mode: 0o700 });
    await store(file, { version: 1, runs: [...runs, { epoch, last: 0, clean: false }], events: oldEvents });
  }
  // The newest events of this run, for save(): the bus's ring is not readable from outside.
  const recent: CoreEvent[] = [];
  conn.events.on("*", (event) => {
    recent.push(event);
    if (recent.length > 2 * KEEP_EVENTS) recent.splice(0, recent.length - KEEP_EVENTS);
  });

  const toWire = (event: CoreEvent): CoreEvent => {
    if (event.type === "gap") {
      const g = event as CoreEvent<"gap">;
      return gap(wire(epoch, g.fromSeq), wire(epoch, g.toSeq), g.missed, g.time);
    }
    return { ...event, seq: wire(epoch, event.seq) } as CoreEvent;
  };

  const history: EventHistory = {
    epoch,
    toWire,
    plan(since, types) {
      if (since === undefined) return { before: [], localSince: undefined };
      const e = Math.floor(since / RUN_SPAN);
      const n = since % RUN_SPAN;
      if (e === epoch) {
        if (n > conn.events.lastSeq) throw new RangeError(`Cannot subscribe since seq ${since}: the newest event is seq ${wire(epoch, conn.events.lastSeq)}`);
        return { before: [], localSince: n };
      }
      const matches = matcher(types);
      const now = Date.now();
      const before: CoreEvent[] = [];
      const known = since === 0 ? runs : runs.filter((r) => r.epoch >= e);
      if (since !== 0 && (known.length === 0 || known[0]!.epoch !== e)) {
        // A run this history does not know (another state directory, or no saving): all of it is unknown.
        before.push(gap(since + 1, wire(epoch, 0), -1, now));
      }
      for (const run of known) {
        const kept = oldEvents.filter((ev) => Math.floor(ev.seq / RUN_SPAN) === run.epoch && ev.seq > since);
        const start = run.epoch === e ? n + 1 : 1;
        const firstKept = kept.length > 0 ? kept[0]!.seq % RUN_SPAN : run.last + 1;
        if (since !== 0 && firstKept > start) before.push(gap(wire(run.epoch, start), wire(run.epoch, firstKept - 1), firstKept - start, now));
        for (const ev of kept) if (matches(ev.type)) before.push(ev);
        if (!run.clean) {
          const after = Math.max(start, kept.length > 0 ? (kept.at(-1)!.seq % RUN_SPAN) + 1 : 1);
          before.push(gap(wire(run.epoch, after), wire(run.epoch, RUN_SPAN - 1), -1, now));
        }
      }
      return { before, localSince: 0 };
    },
    async save() {
      if (file === undefined) return;
      const events = [...oldEvents, ...recent.map(toWire)].slice(-KEEP_EVENTS);
      await store(file, { version: 1, runs: [...runs, { epoch, last: conn.events.lastSeq, clean: true }].slice(-64), events });
    },
  };
  return history;
}

/**
 * The history of a shared connection: the one the daemon opened, or (a connection served without
 * one, as in-process tests do) a fresh unsaved one.
 *
 * @param conn The shared connection.
 * @returns Its history.
 * @example
 * ```ts
 * import { connect } from "../mod.ts";
 * import { eventHistoryOf } from "./event_history.ts";
 * await using conn = await connect("test:///default");
 * if ((await eventHistoryOf(conn)) !== (await eventHistoryOf(conn))) throw new Error("one per connection");
 * ```
 */
export function eventHistoryOf(conn: Connection): Promise<EventHistory> {
  return HISTORIES.get(conn) ?? openEventHistory(conn, { uri: conn.uri });
}
