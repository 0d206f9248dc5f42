/**
 * Serving a procedure in process, without a socket: a session state over an open connection and a call
 * context for it. The dispatch tests and the examples of the procedure handlers use it; the session
 * (`session.ts`) builds the same objects for each client.
 *
 * @module
 */
import type { Connection } from "../core/connection.ts";
import { createConnectionTable } from "./connection_table.ts";
import type { CallContext, ServedProcedure, SessionState } from "./dispatch.ts";
import type { Outbox } from "./outbox.ts";
import { sharedStateOf } from "./shared_state.ts";

/** An outbox that records what would be sent. */
export interface RecordingOutbox extends Outbox {
  /** Every frame sent. */
  readonly frames: Uint8Array[];
}

/**
 * A session state for `conn`, as if a client had opened it (read-only when asked); frames the handlers
 * send are recorded in `outbox.frames`.
 *
 * @param conn An open connection.
 * @param options `readOnly` as CONNECT_OPEN flag 1.
 * @returns The state.
 * @example
 * ```ts
 * import { connect } from "../mod.ts";
 * import { localSession } from "./local_call.ts";
 * await using conn = await connect("test:///default");
 * const session = localSession(conn, { readOnly: true });
 * if (!session.readOnly || session.open?.conn !== conn) throw new Error("unexpected");
 * ```
 */
export function localSession(conn: Connection, options: { readOnly?: boolean } = {}): SessionState & { outbox: RecordingOutbox } {
  const frames: Uint8Array[] = [];
  const outbox: RecordingOutbox = {
    frames,
    send: (frame) => (frames.push(frame), true),
    whenWritable: () => Promise.resolve(),
    backlogBytes: 0,
    overflowed: false,
  };
  return {
    clientId: 0,
    table: createConnectionTable({ allow: [conn.uri], open: () => Promise.resolve(conn) }),
    open: { uri: conn.uri, conn, shared: sharedStateOf(conn) },
    secure: true,
    readOnly: options.readOnly ?? false,
    outbox,
    keepalive: false,
    cleanups: new Set(),
    streams: new Map(),
    holdInput: () => {},
    releaseInput: () => {},
  };
}

/**
 * Calls a served procedure's handler directly (no encoding, no access check: that is the session's).
 *
 * @param served The procedure.
 * @param session The session state (see {@linkcode localSession}).
 * @param args Its arguments.
 * @returns What the handler returns; the actions it queued for after the reply have run.
 * @example
 * ```ts
 * import { connect } from "../mod.ts";
 * import { callLocally, localSession } from "./local_call.ts";
 * import { DOMAIN_PROCEDURES } from "./remote/domain_procs.ts";
 * await using conn = await connect("test:///default");
 * const listAll = DOMAIN_PROCEDURES.find((s) => s.proc.name === "CONNECT_LIST_ALL_DOMAINS")!;
 * const result = await callLocally(listAll, localSession(conn), { needResults: 1, flags: 0 }) as { ret: number };
 * if (result.ret !== 1) throw new Error("unexpected");
 * ```
 */
export async function callLocally<A, R>(served: ServedProcedure<A, R>, session: SessionState, args: A): Promise<R> {
  const after: Array<() => void> = [];
  const ctx: CallContext = {
    session,
    header: { program: served.proc.program, version: served.proc.version, procedure: served.proc.number, type: 0, serial: 1, status: 0 },
    afterReply: (action) => after.push(action),
  };
  const result = await served.run(ctx, args);
  for (const action of after) action();
  return result;
}

/**
 * A call context over a session, for the helpers that take one (look-ups, refs).
 *
 * @param session The session state.
 * @returns A context for a call of procedure 0.
 * @example
 * ```ts
 * import { connect } from "../mod.ts";
 * import { localContext, localSession } from "./local_call.ts";
 * import { connOf } from "./remote/domain_refs.ts";
 * await using conn = await connect("test:///default");
 * if (connOf(localContext(localSession(conn))).conn !== conn) throw new Error("unexpected");
 * ```
 */
export function localContext(session: SessionState): CallContext {
  return {
    session,
    header: { program: 0, version: 0, procedure: 0, type: 0, serial: 1, status: 0 },
    afterReply: (action) => action(),
  };
}
