/**
 * An iSCSI session in full feature phase (RFC 7143 §4.2): one TCP connection, error recovery level 0,
 * many SCSI commands in flight within the target's CmdSN window, Data-In placed straight into the
 * caller's buffer, R2T answered with Data-Out, NOP-Out pings as keepalive, NOP-In answered, logout.
 *
 * Failure rule (ERL 0): anything that leaves the connection in doubt — the socket closing, a command or
 * a ping not answered in time, a protocol error — ends the session, and every pending command is
 * rejected with the same `ConnectError`. Nothing hangs: every wait has a bound.
 *
 * @module
 */
import { ConnectError, VirtError } from "../../../core/errors.ts";
import { FINAL, type Header, IMMEDIATE, NO_TAG, Op, encodeHeader, encodeLun, paddingOf, snGreater, u32 } from "./pdu.ts";
import { PduReader } from "./pdu_reader.ts";
import type { IscsiTransport } from "./transport.ts";
import type { NegotiatedParams } from "./login.ts";
import { type ScsiRequest, type ScsiStatus, scsiStatusOf, type Task } from "./task.ts";
import { TaskTable } from "./task_table.ts";
import { decodeTextPairs, encodeText, type TextPairs } from "./text_keys.ts";

export type { ScsiRequest, ScsiStatus } from "./task.ts";

/** Timing of a session; every wait is bounded. */
export interface SessionTimeouts {
  /** How long a command may take before the session is given up (default 30 s). */
  readonly commandTimeoutMs?: number;
  /** Idle time after which a NOP-Out ping is sent (default 5 s; `0` turns the keepalive off). */
  readonly keepaliveIntervalMs?: number;
  /** How long a ping may go unanswered before the session is given up (default 5 s). */
  readonly keepaliveTimeoutMs?: number;
}

const PADDING = new Uint8Array(4);

/**
 * A logged-in session. Made by `login()` (see login.ts), which hands over the transport and the
 * sequence numbers at the end of the login phase.
 *
 * @example A session whose connection drops rejects what is pending with a `ConnectError`
 * ```ts
 * import { IscsiSession } from "./session.ts";
 * import { ConnectError } from "virtkit";
 * let closed: ((error?: Error) => void) | undefined;
 * const transport = { write() {}, end() {}, destroy() {}, cork() {}, uncork() {}, onData() {}, onClose(f: (error?: Error) => void) { closed = f; } };
 * const params = { maxSendDataBytes: 8192, maxRecvDataBytes: 262144, firstBurstBytes: 65536, maxBurstBytes: 262144, immediateData: true, initialR2T: true };
 * const session = new IscsiSession(transport, { params, cmdSN: 1, expStatSN: 1, maxCmdSN: 64, label: "demo", handOver() {} }, { keepaliveIntervalMs: 0 });
 * const pending = session.execute({ lun: 1, cdb: new Uint8Array([0, 0, 0, 0, 0, 0]) }).then(() => undefined, (e) => e);
 * closed!();
 * if (!((await pending) instanceof ConnectError) || session.alive) throw new Error("unexpected");
 * ```
 */
export class IscsiSession {
  /** What login settled (burst sizes, data segment sizes). */
  readonly params: NegotiatedParams;
  /** `host:port` and target, for messages. */
  readonly label: string;
  readonly #transport: IscsiTransport;
  readonly #tasks: TaskTable;
  /** Commands waiting for the CmdSN window to open, oldest first. */
  readonly #waiting: Array<() => void> = [];
  readonly #commandTimeoutMs: number;
  readonly #keepaliveIntervalMs: number;
  readonly #keepaliveTimeoutMs: number;
  #cmdSN: number;
  #expStatSN: number;
  #maxCmdSN: number;
  #failure: ConnectError | undefined;
  #keepalive: ReturnType<typeof setTimeout> | undefined;
  #lastHeardMs = Date.now();
  readonly #closed: Promise<void>;
  #markClosed!: () => void;

  /** @internal Use `login()`. */
  constructor(
    transport: IscsiTransport,
    state: { params: NegotiatedParams; cmdSN: number; expStatSN: number; maxCmdSN: number; label: string; handOver: (receiver: (chunk: Uint8Array) => void) => void },
    timeouts: SessionTimeouts = {},
  ) {
    this.#transport = transport;
    this.params = state.params;
    this.label = state.label;
    this.#cmdSN = state.cmdSN;
    this.#expStatSN = state.expStatSN;
    this.#maxCmdSN = state.maxCmdSN;
    this.#commandTimeoutMs = timeouts.commandTimeoutMs ?? 30_000;
    this.#keepaliveIntervalMs = timeouts.keepaliveIntervalMs ?? 5_000;
    this.#keepaliveTimeoutMs = timeouts.keepaliveTimeoutMs ?? 5_000;
    this.#tasks = new TaskTable((what) => this.#fail(what), this.#commandTimeoutMs);
    this.#closed = new Promise((resolve) => (this.#markClosed = resolve));
    const reader = new PduReader({ place: (h) => this.#place(h), pdu: (h, data) => this.#receive(h, data) });
    state.handOver((chunk) => {
      this.#lastHeardMs = Date.now();
      try {
        reader.push(chunk);
      } catch (error) {
        this.#fail(`the target sent a malformed PDU (${(error as Error).message})`, error);
      }
    });
    transport.onClose((error) => {
      this.#fail("the connection closed", error);
      this.#markClosed();
    });
    this.#armKeepalive();
  }

  /** Whether the session can still take commands. */
  get alive(): boolean {
    return this.#failure === undefined;
  }

  /** Why the session ended, once it has (the error every pending command was rejected with). */
  get failure(): ConnectError | undefined {
    return this.#failure;
  }

  /** Resolves once the connection is gone (after `logout()`, `close()` or a failure). */
  get closed(): Promise<void> {
    return this.#closed;
  }

  /**
   * Runs one SCSI command. Several may run at once; they are numbered in call order.
   *
   * @param request LUN, CDB, and the buffer to read into or the bytes to write.
   * @returns Status, sense data and residual (a CHECK CONDITION resolves; the SCSI layer interprets it).
   * @throws {ConnectError} When the session fails before the command completes.
   */
  execute(request: ScsiRequest): Promise<ScsiStatus> {
    request.signal?.throwIfAborted();
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<ScsiStatus>((resolve, reject) => {
      const task = this.#tasks.create({ kind: "scsi", resolve: resolve as (value: unknown) => void, reject, request, timeoutMs: this.#commandTimeoutMs });
      const start = () => {
        if (!this.#tasks.has(task) || task.abandoned) return; // aborted or failed while waiting
        this.#sendCommand(task, request);
      };
      if (this.#windowOpen()) start();
      else this.#waiting.push(start);
    });
  }

  /**
   * A Text request (SendTargets in a discovery session), following continuations.
   *
   * @param pairs The keys to send.
   * @returns The answer's pairs, in order.
   */
  text(pairs: TextPairs): Promise<Array<[string, string]>> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const task = this.#tasks.create({ kind: "text", resolve: (data) => resolve(decodeTextPairs(data as Uint8Array)), reject, timeoutMs: this.#commandTimeoutMs });
      this.#sendText(task, encodeText(pairs), NO_TAG);
    });
  }

  /**
   * Sends a NOP-Out ping and waits for its NOP-In.
   *
   * @returns Once the target answered.
   */
  ping(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const task = this.#tasks.create({ kind: "nop", resolve: () => resolve(), reject, timeoutMs: this.#keepaliveTimeoutMs });
      this.#send({ opcode: Op.nopOut | IMMEDIATE, flags: FINAL, lunOrIsid: new Uint8Array(8), itt: task.itt, words: [NO_TAG, this.#cmdSN, this.#expStatSN] });
    });
  }

  /**
   * Logs out (closing the session) and closes the connection; pending commands are rejected. Bounded
   * by the command timeout; the connection is closed in any case.
   */
  async logout(): Promise<void> {
    if (this.#failure) return;
    try {
      await new Promise<unknown>((resolve, reject) => {
        const task = this.#tasks.create({ kind: "logout", resolve, reject, timeoutMs: Math.min(this.#commandTimeoutMs, 5_000) });
        // Reason 0: close the session. CID 0 is the one connection login made.
        this.#send({ opcode: Op.logoutRequest | IMMEDIATE, flags: FINAL, itt: task.itt, words: [0, this.#cmdSN, this.#expStatSN] });
      });
    } catch {
      // The target may close before it answers; the session ends either way.
    }
    this.close();
    await this.#closed;
  }

  /** Drops the connection at once; pending commands are rejected with a `ConnectError`. */
  close(): void {
    this.#fail("the session was closed");
  }

  #windowOpen(): boolean {
    return !snGreater(this.#cmdSN, this.#maxCmdSN);
  }

  #sendCommand(task: Task, request: ScsiRequest): void {
    const p = this.params;
    const cdb = new Uint8Array(16);
    cdb.set(request.cdb);
    const readBytes = request.read?.byteLength ?? 0;
    const writeBytes = request.write?.byteLength ?? 0;
    const immediate = p.immediateData ? Math.min(writeBytes, p.firstBurstBytes, p.maxSendDataBytes) : 0;
    const unsolicited = p.initialR2T ? immediate : Math.min(writeBytes, p.firstBurstBytes);
    const flags = (unsolicited > immediate ? 0 : FINAL) | (readBytes > 0 ? 0x40 : 0) | (writeBytes > 0 ? 0x20 : 0) | 1; // ATTR 1: simple
    const cmdSN = this.#cmdSN;
    this.#cmdSN = (this.#cmdSN + 1) >>> 0;
    this.#transport.cork();
    this.#send({
      opcode: Op.scsiCommand,
      flags,
      lunOrIsid: encodeLun(request.lun),
      itt: task.itt,
      words: [readBytes + writeBytes, cmdSN, this.#expStatSN],
      cdb,
      ...(immediate > 0 ? { data: request.write!.subarray(0, immediate) } : {}),
    });
    if (unsolicited > immediate) this.#sendDataOut(task, NO_TAG, request.lun, immediate, unsolicited - immediate);
    this.#transport.uncork();
  }

  /** One sequence of Data-Out PDUs, each at most what the target accepts in a data segment. */
  #sendDataOut(task: Task, ttt: number, lun: number, offset: number, length: number): void {
    const data = task.write;
    if (!data) return;
    const lunBytes = encodeLun(lun);
    const step = this.params.maxSendDataBytes;
    let dataSN = 0;
    for (let at = offset; at < offset + length; at += step) {
      const n = Math.min(step, offset + length - at);
      const last = at + n >= offset + length;
      this.#send({ opcode: Op.dataOut, flags: last ? FINAL : 0, lunOrIsid: lunBytes, itt: task.itt, words: [ttt, 0, this.#expStatSN, 0, dataSN++, at], data: data.subarray(at, at + n) });
    }
  }

  #sendText(task: Task, data: Uint8Array, ttt: number): void {
    const cmdSN = this.#cmdSN;
    this.#cmdSN = (this.#cmdSN + 1) >>> 0;
    this.#send({ opcode: Op.textRequest, flags: FINAL, lunOrIsid: new Uint8Array(8), itt: task.itt, words: [ttt, cmdSN, this.#expStatSN], data });
  }

  #send(pdu: Parameters<typeof encodeHeader>[0]): void {
    if (this.#failure) return;
    this.#transport.write(encodeHeader(pdu));
    if (pdu.data && pdu.data.byteLength > 0) {
      this.#transport.write(pdu.data);
      const pad = paddingOf(pdu.data.byteLength);
      if (pad > 0) this.#transport.write(PADDING.subarray(0, pad));
    }
  }

  #place(header: Header): Uint8Array | undefined {
    if (header.opcode !== Op.dataIn) return undefined;
    const buffer = this.#tasks.get(header.itt)?.readBuffer;
    const offset = u32(header.bytes, 40);
    if (!buffer || offset + header.dataBytes > buffer.byteLength) return undefined;
    return buffer.subarray(offset, offset + header.dataBytes);
  }

  #receive(header: Header, data: Uint8Array | undefined): void {
    const b = header.bytes;
    const op = header.opcode;
    if (op !== Op.dataIn || (header.flags & 0x01) !== 0) {
      // PDUs with status advance StatSN; an unsolicited NOP-In (ITT 0xffffffff) does not, R2T never.
      if (op !== Op.r2t && !(op === Op.nopIn && header.itt === NO_TAG)) this.#expStatSN = (u32(b, 24) + 1) >>> 0;
    }
    this.#window(u32(b, 28), u32(b, 32));
    const task = this.#tasks.get(header.itt);
    switch (op) {
      case Op.dataIn: {
        if (!task) return;
        task.received += header.dataBytes;
        if (data !== undefined && task.readBuffer) return this.#tasks.fail(task, this.#protocolError("Data-In outside the read buffer"));
        if ((header.flags & 0x01) !== 0) this.#complete(task, header, undefined);
        return;
      }
      case Op.scsiResponse:
        if (task) this.#complete(task, header, data);
        return;
      case Op.r2t:
        if (task?.write) this.#sendDataOut(task, u32(b, 20), task.lun, u32(b, 40), u32(b, 44));
        return;
      case Op.nopIn:
        if (task) this.#tasks.answer(task, undefined);
        // A ping from the target (TTT set) wants a NOP-Out echoing its TTT, with no answer expected.
        if (u32(b, 20) !== NO_TAG) {
          this.#send({ opcode: Op.nopOut | IMMEDIATE, flags: FINAL, lunOrIsid: b.subarray(8, 16), itt: NO_TAG, words: [u32(b, 20), this.#cmdSN, this.#expStatSN] });
        }
        return;
      case Op.textResponse:
        if (!task) return;
        task.textData.push(data ?? new Uint8Array(0));
        if ((header.flags & 0x40) !== 0) this.#sendText(task, new Uint8Array(0), u32(b, 20)); // C: more follows
        else this.#tasks.answer(task, concat(task.textData));
        return;
      case Op.logoutResponse:
        if (task) this.#tasks.answer(task, b[2]);
        return;
      case Op.asyncMessage:
        // 1: the target asks for a logout; 2, 3: it drops the connection or the session.
        if (b[36] === 1 || b[36] === 2 || b[36] === 3) this.#fail(`the target ended the session (async event ${b[36]})`);
        return;
      case Op.reject: {
        const rejected = data && data.byteLength >= 20 ? u32(data, 16) : NO_TAG;
        const victim = this.#tasks.get(rejected);
        const error = this.#protocolError(`the target rejected a PDU (reason 0x${b[2]!.toString(16)})`);
        if (victim) this.#tasks.fail(victim, error);
        else this.#fail(error.message);
        return;
      }
      default:
        this.#fail(`the target sent an unexpected PDU (opcode 0x${op.toString(16)})`);
    }
  }

  #complete(task: Task, header: Header, data: Uint8Array | undefined): void {
    this.#tasks.answer(task, scsiStatusOf(header, data, task.received));
  }

  #window(expCmdSN: number, maxCmdSN: number): void {
    // RFC 7143 §4.2.2.1: a MaxCmdSN below ExpCmdSN - 1 is ignored; otherwise only growth counts.
    if (snGreater((expCmdSN - 1) >>> 0, maxCmdSN) || !snGreater(maxCmdSN, this.#maxCmdSN)) return;
    this.#maxCmdSN = maxCmdSN;
    while (this.#waiting.length > 0 && this.#windowOpen()) this.#waiting.shift()!();
  }

  #protocolError(what: string): VirtError {
    return new VirtError("internal", `iSCSI session ${this.label}: ${what}`, { driver: "iscsi" });
  }

  #armKeepalive(): void {
    if (this.#keepaliveIntervalMs <= 0 || this.#failure) return;
    this.#keepalive = setTimeout(() => {
      const idleMs = Date.now() - this.#lastHeardMs;
      if (idleMs < this.#keepaliveIntervalMs) return this.#armKeepalive();
      this.ping().then(() => this.#armKeepalive(), () => {});
    }, this.#keepaliveIntervalMs);
    (this.#keepalive as { unref?: () => void }).unref?.();
  }

  #fail(reason: string, cause?: unknown): void {
    if (this.#failure) return;
    const error = new ConnectError(`iSCSI session ${this.label} ended: ${reason}`, { driver: "iscsi", ...(cause ? { cause } : {}) });
    this.#failure = error;
    clearTimeout(this.#keepalive);
    this.#waiting.length = 0;
    this.#tasks.rejectAll(error);
    this.#transport.destroy();
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
