/**
 * One client's session: frames in, calls dispatched concurrently (replies go out as each call finishes,
 * so a long call never holds up a short one), keepalive answered, STREAM frames routed to the stream a
 * call opened, and a client that breaks the protocol disconnected without disturbing anyone else.
 *
 * Fairness: a client has at most `maxCallsInFlight` calls running. Its further calls (and STREAM frames,
 * which keep their order behind them) wait in its queue, its socket is not read meanwhile, and the
 * queue moves on from a `setImmediate` once calls finish, never from the promise jobs of the calls
 * that finished: those run before the event loop looks at any other socket, so a client that pipelines
 * thousands of calls would otherwise be served to the end while every other client waits.
 *
 * @module
 */
import type { Socket } from "node:net";
import { setImmediate as nodeSetImmediate } from "node:timers";
import { encodeMessage, encodePacket, FrameDecoder, KEEPALIVE_PROGRAM, MessageStatus, MessageType, type Packet, type PacketHeader } from "../drivers/remote/rpc/packet.ts";
import { LibvirtErrorCode } from "../drivers/remote/rpc/errors.ts";
import { remoteError } from "../drivers/remote/rpc/protocol/common.ts";
import { XdrReader } from "../drivers/remote/rpc/xdr.ts";
import type { Session, SessionContext } from "./daemon.ts";
import { type CallContext, errorRecordOf, RpcFault, type ServedProcedure, type SessionState } from "./dispatch.ts";
import { createOutbox } from "./outbox.ts";

/** A program the daemon serves: its number, version and procedures. */
export interface ServedProgram {
  /** Program number (REMOTE is 0x20008086). */
  readonly program: number;
  /** Its version. */
  readonly version: number;
  /** Procedures by number. */
  readonly procedures: ReadonlyMap<number, ServedProcedure>;
  /** A procedure's access class: `read`, `write`, or undefined when the table does not know it. */
  readonly accessOf: (proc: number) => "read" | "write" | undefined;
  /** A procedure's name for error messages. */
  readonly nameOf: (proc: number) => string;
}

/** Options of {@linkcode createSessionFactory}. */
export interface SessionOptions {
  /** The programs served (REMOTE and virtkit's own). */
  readonly programs: readonly ServedProgram[];
  /**
   * Calls one client may have running at once (default 32); its further frames wait, its socket unread,
   * until some finish.
   */
  readonly maxCallsInFlight?: number;
  /** The client's send backlog that disconnects it (default: the outbox's 8 MiB). */
  readonly maxBacklogBytes?: number;
}

const { INTERNAL_ERROR: VIR_ERR_INTERNAL_ERROR, NO_SUPPORT: VIR_ERR_NO_SUPPORT, OPERATION_DENIED: VIR_ERR_OPERATION_DENIED, RPC: VIR_ERR_RPC } =
  LibvirtErrorCode;

/**
 * Runs `fn` once the event loop has looked at the other sockets. Node: `setImmediate`, whose callbacks
 * run after the poll phase. Deno runs its immediates without polling I/O in between (a flood measured
 * 62 turns ahead of another client's call), and a 0 ms timeout waits for the next poll there.
 */
const yieldToIo: (fn: () => void) => void = "Deno" in globalThis ? (fn) => void setTimeout(fn, 0) : (fn) => void nodeSetImmediate(fn);

/** The context of one call; `afterReply` lists its actions only once one is queued (most calls queue none). */
class Call implements CallContext {
  after: Array<() => void> | undefined;
  constructor(readonly session: SessionState, readonly header: PacketHeader) {}
  afterReply(action: () => void): void {
    (this.after ??= []).push(action);
  }
}

/** A call waiting for a slot (`served`, `args`), or a STREAM frame queued behind such calls (`frame`). */
interface Waiting {
  readonly header: PacketHeader;
  readonly served?: ServedProcedure;
  readonly args?: unknown;
  readonly frame?: Uint8Array;
}

function denied(name: string): RpcFault {
  return new RpcFault(VIR_ERR_OPERATION_DENIED, `operation forbidden: read only access prevents ${name}`);
}

/**
 * Makes the session factory the daemon calls for each client.
 *
 * @param options The programs and limits.
 * @returns The factory.
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { connect } from "../mod.ts";
 * import { channelFromSocket, RpcClient } from "../drivers/remote/rpc/mod.ts";
 * import { CONNECT_OPEN } from "../drivers/remote/rpc/protocol/connect.ts";
 * import { CONNECT_LIST_ALL_DOMAINS } from "../drivers/remote/rpc/protocol/domain.ts";
 * import { createConnection } from "node:net";
 * import { startDaemon } from "./daemon.ts";
 * import { remoteProgram, SERVED_REMOTE_GROUPS } from "./remote/program.ts";
 * import { createSessionFactory } from "./session.ts";
 * const dir = mkdtempSync(join(tmpdir(), "vk-doc-"));
 * const path = join(dir, "s.sock");
 * try {
 *   const daemon = await startDaemon(
 *     { listen: [{ kind: "unix", path }], insecureTcp: false, allow: ["test:///default"], socketMode: 0o600 },
 *     { open: connect, log: () => {}, createSession: createSessionFactory({ programs: [remoteProgram(...SERVED_REMOTE_GROUPS)] }) },
 *   );
 *   try {
 *     const socket = createConnection(path);
 *     await new Promise((resolve) => socket.once("connect", resolve));
 *     const client = new RpcClient(channelFromSocket(socket));
 *     await client.call(CONNECT_OPEN, { name: "test:///default", flags: 0 });
 *     const { ret } = await client.call(CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 });
 *     client.close();
 *     if (ret !== 1) throw new Error("unexpected");
 *   } finally {
 *     await daemon.stop(); // also drops the client's connection when a call failed
 *   }
 * } finally {
 *   rmSync(dir, { recursive: true, force: true });
 * }
 * ```
 */
export function createSessionFactory(options: SessionOptions): (ctx: SessionContext) => Session {
  const programs = new Map(options.programs.map((p) => [p.program, p]));
  const maxInFlight = options.maxCallsInFlight ?? 32;
  return (ctx) => {
    const socket = ctx.client.socket as Socket;
    const outbox = createOutbox(socket, {
      maxBacklogBytes: options.maxBacklogBytes,
      onOverflow: (bytes) => ctx.log(`client ${ctx.clientId} disconnected: it stopped reading (${bytes} bytes queued)`),
    });
    const state: SessionState = {
      clientId: ctx.clientId,
      table: ctx.table,
      secure: ctx.client.secure,
      readOnly: false,
      outbox,
      keepalive: false,
      cleanups: new Set(),
      streams: new Map(),
      holdInput: () => {
        inputHolds++;
        updateInput();
      },
      releaseInput: () => {
        inputHolds--;
        updateInput();
      },
    };
    const decoder = new FrameDecoder();
    // Calls running, and the wake-up of drain() once none is.
    let inFlight = 0;
    let idle: { promise: Promise<void>; resolve: () => void } | undefined;
    // Calls admitted while the client had maxInFlight running, and STREAM frames behind them, in order
    // (a ring read from `waitingAt`: shift() would move every entry once per call).
    let waiting: Waiting[] = [];
    let waitingAt = 0;
    let pumpScheduled = false;
    let draining = false;
    let paused = false;
    let inputHolds = 0;
    // Stop reading the socket while the client has too many calls in flight, calls waiting, or a
    // stream's sink is full.
    const updateInput = () => {
      const hold = inFlight >= maxInFlight || waitingAt < waiting.length || inputHolds > 0;
      if (hold && !paused) socket.pause();
      else if (!hold && paused) socket.resume();
      paused = hold;
    };
    let why = "closed by client";
    let resolveClosed!: (why: string) => void;
    const closed = new Promise<string>((resolve) => (resolveClosed = resolve));

    const fail = (reason: string) => {
      why = reason;
      socket.destroy();
    };

    // One header object for every reply of the session, filled in just before encoding (encodeMessage
    // reads it and keeps nothing): a fresh one per reply was an allocation per call.
    const reply = { program: 0, version: 0, procedure: 0, type: MessageType.REPLY, serial: 0, status: 0 };
    const replyHeader = (header: PacketHeader, status: number): PacketHeader => {
      reply.program = header.program;
      reply.version = header.version;
      reply.procedure = header.procedure;
      reply.serial = header.serial;
      reply.status = status;
      return reply;
    };
    const replyError = (header: PacketHeader, error: unknown) => {
      outbox.send(encodeMessage(replyHeader(header, MessageStatus.ERROR), remoteError, errorRecordOf(error)));
    };

    // Checks a call: the procedure to run, or throws the fault to answer.
    const admit = (header: PacketHeader, program: ServedProgram): ServedProcedure => {
      const access = program.accessOf(header.procedure);
      // Read-only first, as libvirt's public API checks it before any driver is asked.
      if (state.readOnly && access === "write") throw denied(program.nameOf(header.procedure));
      const served = program.procedures.get(header.procedure);
      if (!served) {
        throw new RpcFault(VIR_ERR_NO_SUPPORT, `this function is not supported by the connection driver: ${program.nameOf(header.procedure)}`);
      }
      if (!state.open && !served.beforeOpen) throw new RpcFault(VIR_ERR_INTERNAL_ERROR, "connection not open");
      // A served procedure the table does not classify is refused too: the table is an allowlist.
      if (state.readOnly && access !== "read") throw denied(program.nameOf(header.procedure));
      return served;
    };

    // Decodes a call's arguments, or throws the fault to answer. Synchronous, so the payload (a view
    // into the socket's chunk) is read before the data event returns.
    const decodeArgs = (served: ServedProcedure, payload: Uint8Array): unknown => {
      let args: unknown;
      const reader = new XdrReader(payload);
      try {
        args = served.proc.args.decode(reader);
      } catch (error) {
        throw new RpcFault(VIR_ERR_RPC, `Unable to decode message payload: ${error instanceof Error ? error.message : String(error)}`);
      }
      // Checked here rather than with reader.end(), whose message would be built for every call.
      if (reader.remaining !== 0) {
        throw new RpcFault(VIR_ERR_RPC, `Unable to decode message payload: Malformed XDR: ${reader.remaining} bytes left over after ${served.proc.name} arguments`);
      }
      return args;
    };

    // One promise per call (profiled: the layers of async functions and .then() around each call were
    // a visible part of a call's cost): the reply or the error reply, then the in-flight bookkeeping.
    // It never rejects.
    const serveCall = async (header: PacketHeader, served: ServedProcedure, args: unknown) => {
      try {
        const call = new Call(state, header);
        const result = await served.run(call, args);
        outbox.send(encodeMessage(replyHeader(header, MessageStatus.OK), served.proc.ret, result));
        if (call.after) for (const action of call.after) action();
      } catch (error) {
        try {
          replyError(header, error);
        } catch (fault) {
          // An error reply that cannot even be encoded is a bug: that client is dropped, the daemon lives on.
          fail(`internal error: ${fault instanceof Error ? fault.message : String(fault)}`);
        }
      } finally {
        inFlight--;
        if (waitingAt < waiting.length) schedulePump();
        else updateInput();
        if (inFlight === 0 && idle) {
          idle.resolve();
          idle = undefined;
        }
      }
    };

    const onCall = (packet: Packet) => {
      const { header } = packet;
      const program = programs.get(header.program);
      if (!program) {
        replyError(header, new RpcFault(VIR_ERR_RPC, `cannot find program ${header.program} version ${header.version}`));
        return;
      }
      if (header.version !== program.version) {
        replyError(header, new RpcFault(VIR_ERR_RPC, `program ${header.program} version ${header.version} is not ${program.version}`));
        return;
      }
      if (draining) {
        replyError(header, new RpcFault(VIR_ERR_RPC, "the daemon is shutting down"));
        return;
      }
      let served: ServedProcedure;
      let args: unknown;
      try {
        served = admit(header, program);
        args = decodeArgs(served, packet.payload);
      } catch (error) {
        replyError(header, error);
        return;
      }
      if (inFlight >= maxInFlight || waitingAt < waiting.length) {
        waiting.push({ header, served, args });
        updateInput();
        return;
      }
      start(header, served, args);
    };

    const start = (header: PacketHeader, served: ServedProcedure, args: unknown) => {
      inFlight++;
      void serveCall(header, served, args);
      if (inFlight >= maxInFlight) updateInput();
    };

    const schedulePump = () => {
      if (pumpScheduled) return;
      pumpScheduled = true;
      yieldToIo(pump);
    };

    // Starts waiting calls while slots are free (at most maxInFlight per turn of the event loop: the
    // slots only free up in the promise jobs after this returns), and delivers the STREAM frames
    // queued behind them.
    const pump = () => {
      pumpScheduled = false;
      while (waitingAt < waiting.length && (inFlight < maxInFlight || waiting[waitingAt]!.frame)) {
        const next = waiting[waitingAt]!;
        waiting[waitingAt++] = undefined!;
        try {
          if (next.frame) deliverStreamFrame(next.header, next.frame);
          else start(next.header, next.served!, next.args);
        } catch (error) {
          fail(`internal error: ${error instanceof Error ? error.message : String(error)}`);
          return;
        }
      }
      if (waitingAt === waiting.length) {
        waiting = [];
        waitingAt = 0;
      }
      updateInput();
    };

    const deliverStreamFrame = (header: PacketHeader, payload: Uint8Array) => {
      state.streams.get(header.serial)?.onFrame(header.status, payload);
    };

    const onPacket = (packet: Packet) => {
      const { header } = packet;
      if (header.program === KEEPALIVE_PROGRAM) {
        // PING -> PONG, at once: a client that probed feature 10 drops us after a few missed PONGs.
        if (header.type === MessageType.MESSAGE && header.procedure === 1) {
          outbox.send(encodePacket({ ...header, procedure: 2, serial: 0, status: MessageStatus.OK }));
        }
        return;
      }
      if (header.type === MessageType.STREAM) {
        // Behind waiting calls, it waits too (the call that opens its stream may be among them); it
        // is copied then, as the payload is a view into the socket's chunk.
        if (waitingAt < waiting.length) waiting.push({ header, frame: packet.payload.slice() });
        else deliverStreamFrame(header, packet.payload);
        return;
      }
      if (header.type === MessageType.CALL) {
        onCall(packet);
        return;
      }
      if (header.type === MessageType.CALL_WITH_FDS) {
        replyError(header, new RpcFault(VIR_ERR_NO_SUPPORT, "passing file descriptors is not supported"));
        return;
      }
      fail(`protocol error: unexpected message type ${header.type} from a client`);
    };

    socket.on("data", (chunk: Uint8Array) => {
      let packets: Packet[];
      try {
        packets = decoder.push(chunk);
      } catch (error) {
        fail(`protocol error: ${error instanceof Error ? error.message : String(error)}`);
        return;
      }
      for (const packet of packets) {
        try {
          onPacket(packet);
        } catch (error) {
          fail(`internal error: ${error instanceof Error ? error.message : String(error)}`);
          return;
        }
      }
    });
    socket.on("error", (error) => (why = error.message));
    socket.on("close", () => {
      // Nobody is left to answer.
      waiting = [];
      waitingAt = 0;
      for (const stream of state.streams.values()) stream.onClientGone();
      state.streams.clear();
      for (const cleanup of state.cleanups) {
        try {
          cleanup();
        } catch {
          // cleanup of one resource must not skip the others
        }
      }
      state.cleanups.clear();
      resolveClosed(why);
    });

    return {
      async drain() {
        draining = true;
        // Calls not started yet are refused like the ones that come in from now on.
        const refused = waiting.slice(waitingAt);
        waiting = [];
        waitingAt = 0;
        for (const entry of refused) {
          if (entry.frame) deliverStreamFrame(entry.header, entry.frame);
          else replyError(entry.header, new RpcFault(VIR_ERR_RPC, "the daemon is shutting down"));
        }
        updateInput();
        if (inFlight === 0) return;
        if (!idle) {
          let resolve!: () => void;
          const promise = new Promise<void>((r) => (resolve = r));
          idle = { promise, resolve };
        }
        await idle.promise;
      },
      close() {
        why = "daemon stopping";
        socket.end();
        // end() waits for the peer; a client that does not read would keep the socket open.
        setTimeout(() => socket.destroy(), 1000).unref?.();
      },
      closed,
    };
  };
}
