/**
 * The daemon as a whole: listeners, the shared connection table, one session per client, the
 * connect/disconnect log lines, and a clean stop that finishes the replies in flight.
 *
 * @module
 */
import type { ConnectOptions } from "../core/connection.ts";
import { type ConnectionTable, createConnectionTable, type Opener } from "./connection_table.ts";
import { type EventHistory, openEventHistory } from "./event_history.ts";
import { type AcceptedSocket, type Listener, startListener } from "./listeners.ts";
import type { DaemonOptions } from "./options.ts";

/** What a session gets from the daemon. */
export interface SessionContext {
  /** The client's socket and peer. */
  readonly client: AcceptedSocket;
  /** The client's number in the log. */
  readonly clientId: number;
  /** The shared connections. */
  readonly table: ConnectionTable;
  /** Writes one log line. */
  readonly log: (line: string) => void;
}

/** One client's session, as the daemon drives it. */
export interface Session {
  /** Stops taking new calls and resolves once every call in flight has been answered. */
  drain(): Promise<void>;
  /** Closes the client's socket. */
  close(): void;
  /** Resolves when the client is gone; the value says why (`"closed by client"`, an error text). */
  readonly closed: Promise<string>;
}

/** Creates the session of a new client. */
export type SessionFactory = (ctx: SessionContext) => Session;

/** Options of {@linkcode startDaemon}. */
export interface StartDaemonOptions {
  /** How to open a connection (`connect` from `mod.ts`). */
  readonly open: Opener;
  /** The session of each client. */
  readonly createSession: SessionFactory;
  /** Where log lines go (default: stderr). */
  readonly log?: (line: string) => void;
  /** More options for every connection opened (a clock, ...). */
  readonly connectOptions?: ConnectOptions;
  /** How long `stop()` waits for replies in flight before closing clients anyway (default 10 s). */
  readonly drainTimeoutMs?: number;
}

/** A running daemon. */
export interface Daemon {
  /** What it listens on (`unix:PATH`, `tls:HOST:PORT`, `tcp:HOST:PORT`). */
  readonly addresses: readonly string[];
  /** The shared connections. */
  readonly table: ConnectionTable;
  /** How many clients are connected now. */
  readonly clientCount: number;
  /** Stops listening, finishes replies in flight, disconnects every client and closes the connections. */
  stop(): Promise<void>;
}

/**
 * Starts the daemon: every listener up before it resolves, so the caller can print the readiness line.
 *
 * @param options The parsed command line.
 * @param deps How to open connections and serve clients.
 * @returns The running daemon.
 * @throws {Error} When a listener cannot start (the ones already started are closed again).
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { createConnection } from "node:net";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { startDaemon } from "./daemon.ts";
 * import { connect } from "../mod.ts";
 * const dir = mkdtempSync(join(tmpdir(), "vk-doc-"));
 * const path = join(dir, "d.sock");
 * const lines: string[] = [];
 * try {
 *   const daemon = await startDaemon(
 *     { listen: [{ kind: "unix", path }], insecureTcp: false, allow: ["test:///default"], socketMode: 0o600 },
 *     {
 *       open: connect,
 *       log: (line) => lines.push(line),
 *       createSession: ({ client }) => {
 *         const closed = new Promise<string>((resolve) => client.socket.once("close", () => resolve("closed by client")));
 *         return { drain: async () => {}, close: () => client.socket.destroy(), closed };
 *       },
 *     },
 *   );
 *   try {
 *     const socket = createConnection(path);
 *     await new Promise((resolve) => socket.once("connect", resolve));
 *     socket.end();
 *     await new Promise((resolve) => socket.once("close", resolve));
 *   } finally {
 *     await daemon.stop();
 *   }
 * } finally {
 *   rmSync(dir, { recursive: true, force: true });
 * }
 * if (!lines[0]?.startsWith("client 1 connected")) throw new Error(`unexpected: ${lines}`);
 * ```
 */
export async function startDaemon(options: DaemonOptions, deps: StartDaemonOptions): Promise<Daemon> {
  const log = deps.log ?? ((line: string) => console.error(line));
  const histories = new Set<EventHistory>();
  const table = createConnectionTable({
    allow: options.allow,
    // Each shared connection's event history starts with it, so seqs carry this run (event_history.ts).
    open: async (uri, connectOptions) => {
      const conn = await deps.open(uri, connectOptions);
      try {
        histories.add(await openEventHistory(conn, { uri, ...(options.stateDir === undefined ? {} : { stateDir: options.stateDir }) }));
      } catch (error) {
        await conn.close().catch(() => {});
        throw error;
      }
      return conn;
    },
    connectOptions: { ...deps.connectOptions, ...(options.stateDir === undefined ? {} : { stateDir: options.stateDir }) },
  });
  const sessions = new Set<Session>();
  let nextClientId = 1;
  let stopping = false;
  const onClient = (client: AcceptedSocket) => {
    if (stopping) {
      client.socket.destroy();
      return;
    }
    const clientId = nextClientId++;
    log(`client ${clientId} connected (${client.peer})`);
    const session = deps.createSession({ client, clientId, table, log });
    sessions.add(session);
    void session.closed.then((why) => {
      sessions.delete(session);
      log(`client ${clientId} disconnected (${why})`);
    });
  };
  const listeners: Listener[] = [];
  try {
    for (const spec of options.listen) {
      listeners.push(
        await startListener(spec, {
          tls: spec.kind === "tcp" && !options.insecureTcp ? options.tls : undefined,
          socketMode: options.socketMode,
          onClient,
        }),
      );
    }
  } catch (error) {
    await Promise.allSettled(listeners.map((l) => l.close()));
    throw error;
  }
  const drainTimeoutMs = deps.drainTimeoutMs ?? 10_000;
  let stopped: Promise<void> | undefined;
  return {
    addresses: listeners.map((l) => l.address),
    table,
    get clientCount() {
      return sessions.size;
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        await Promise.allSettled(listeners.map((l) => l.close()));
        const all = [...sessions];
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, drainTimeoutMs)));
        await Promise.race([Promise.allSettled(all.map((s) => s.drain())), timeout]);
        clearTimeout(timer);
        for (const session of all) session.close();
        await Promise.allSettled(all.map((s) => s.closed));
        // Saved once no client can cause more events: a client's `since` survives the restart.
        for (const result of await Promise.allSettled([...histories].map((h) => h.save()))) {
          if (result.status === "rejected") log(`cannot save the event history: ${(result.reason as Error).message}`);
        }
        await table.close();
      })();
      return stopped;
    },
  };
}
