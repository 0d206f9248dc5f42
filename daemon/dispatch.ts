/**
 * What a served procedure is and what it gets: the client's session state (its shared connection,
 * read-only flag, event callbacks, streams) and the call's header. The protocol layer
 * (`drivers/remote/rpc/`) gives the message shapes; this file only pairs each with the code that serves it.
 *
 * @module
 */
import type { Connection } from "../core/connection.ts";
import type { PacketHeader } from "../drivers/remote/rpc/packet.ts";
import type { Procedure, RemoteErrorRecord } from "../drivers/remote/rpc/protocol/common.ts";
import { remoteErrorFrom } from "../drivers/remote/rpc/errors.ts";
import type { ConnectionTable } from "./connection_table.ts";
import type { Outbox } from "./outbox.ts";
import type { SharedState } from "./shared_state.ts";

/** One client's state, as procedures read and change it. */
export interface SessionState {
  /** The client's number in the log. */
  readonly clientId: number;
  /** The shared connections. */
  readonly table: ConnectionTable;
  /** The connection opened by CONNECT_OPEN, with its shared ids and event feed. */
  open?: { readonly uri: string; readonly conn: Connection; readonly shared: SharedState };
  /** Unix socket or TLS (`virConnectIsSecure`). */
  readonly secure: boolean;
  /** CONNECT_OPEN flag 1. */
  readOnly: boolean;
  /** The client's send queue. */
  readonly outbox: Outbox;
  /** Whether the client was told the daemon speaks keepalive (feature 10 probed): then it PINGs. */
  keepalive: boolean;
  /** Runs when the client goes (event callbacks, streams and subscriptions clean up here). */
  readonly cleanups: Set<() => void>;
  /** Stops reading the client's socket (a stream's sink is full); pair with `releaseInput`. */
  holdInput(): void;
  /** Undoes one `holdInput`. */
  releaseInput(): void;
  /** Streams opened by calls, by the serial of the call. */
  readonly streams: Map<number, StreamEndpoint>;
}

/** The daemon's end of a STREAM opened by a call (vol-upload, vol-download). */
export interface StreamEndpoint {
  /** Gets each STREAM frame the client sends for it (status CONTINUE with data, OK at the end, ERROR to abort). */
  onFrame(status: number, payload: Uint8Array): void;
  /** The client went away. */
  onClientGone(): void;
}

/** The context of one call. */
export interface CallContext {
  /** The client's session. */
  readonly session: SessionState;
  /** The call's header (program, version, procedure, serial). */
  readonly header: PacketHeader;
  /**
   * Queues a frame that must go out after the call's reply (a stream opened by the call waits for its
   * reply to leave first): runs right after the reply was sent.
   */
  afterReply(action: () => void): void;
}

/** A procedure the daemon serves. */
export interface ServedProcedure<A = unknown, R = unknown> {
  /** Its shape and number. */
  readonly proc: Procedure<A, R>;
  /** Whether it may be called before CONNECT_OPEN (the handshake's AUTH_LIST, feature probes, open). */
  readonly beforeOpen?: boolean;
  /** Serves it. */
  run(ctx: CallContext, args: A): Promise<R> | R;
}

/**
 * Pairs a procedure with its handler (keeps the argument and result types tied to the shape).
 *
 * @param proc The procedure's shape.
 * @param run The handler.
 * @param options `beforeOpen` for handshake procedures.
 * @returns The served procedure.
 * @example
 * ```ts
 * import { serve } from "./dispatch.ts";
 * import { CONNECT_GET_TYPE } from "../drivers/remote/rpc/protocol/connect.ts";
 * const served = serve(CONNECT_GET_TYPE, () => "TEST");
 * if (served.proc.number !== 3) throw new Error("unexpected");
 * ```
 */
export function serve<A, R>(
  proc: Procedure<A, R>,
  run: (ctx: CallContext, args: A) => Promise<R> | R,
  options: { beforeOpen?: boolean } = {},
): ServedProcedure<A, R> {
  return Object.freeze({ proc, run, ...options });
}

/**
 * An error the daemon answers with a specific libvirt error code (not derived from a virtkit error).
 *
 * @example
 * ```ts
 * import { RpcFault } from "./dispatch.ts";
 * const fault = new RpcFault(3, "this function is not supported by the connection driver: X");
 * if (fault.libvirtCode !== 3 || fault.libvirtDomain !== 13) throw new Error("unexpected");
 * ```
 */
export class RpcFault extends Error {
  /** libvirt `virErrorNumber`. */
  readonly libvirtCode: number;
  /** libvirt `virErrorDomain`. */
  readonly libvirtDomain: number;

  /**
   * @param libvirtCode The code.
   * @param message The message the client prints.
   * @param libvirtDomain The error domain (default REMOTE = 13).
   */
  constructor(libvirtCode: number, message: string, libvirtDomain = 13) {
    super(message);
    this.name = "RpcFault";
    this.libvirtCode = libvirtCode;
    this.libvirtDomain = libvirtDomain;
  }
}

/**
 * The `remote_error` a failed call answers with: an {@linkcode RpcFault}'s own code, else the protocol
 * layer's mapping of virtkit's errors (not found, unsupported, state, conflict, bad argument...).
 *
 * @param error What the handler threw.
 * @returns The record to encode.
 * @example
 * ```ts
 * import { errorRecordOf, RpcFault } from "./dispatch.ts";
 * import { NotFoundError } from "../core/errors.ts";
 * if (errorRecordOf(new RpcFault(29, "denied")).code !== 29) throw new Error("unexpected");
 * if (errorRecordOf(new NotFoundError("domain", "x")).code !== 42) throw new Error("NO_DOMAIN");
 * ```
 */
export function errorRecordOf(error: unknown): RemoteErrorRecord {
  const record = remoteErrorFrom(error);
  if (error instanceof RpcFault) return { ...record, code: error.libvirtCode, domain: error.libvirtDomain };
  return record;
}
