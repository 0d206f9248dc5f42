/**
 * A fake QMP server that speaks real QMP JSON over an in-memory byte duplex, with strict, ordered
 * expectations (libvirt's `qemumonitortestutils.c`, go-qemu's `testSocket`).
 *
 * @module
 */
import { LineSplitter } from "../line_reader.ts";
import type { QmpTransport } from "../transport.ts";
import {
  isJsonObject,
  jsonEqual,
  type JsonObject,
  type JsonValue,
  type QmpCommandMessage,
  type QmpErrorBody,
  type QmpGreeting,
  type QmpTimestamp,
} from "../types.ts";

/** The greeting of the QEMU installed on the reference machine (7.2.22, Debian). */
export const QEMU_7_2_GREETING: QmpGreeting = Object.freeze({
  QMP: { version: { qemu: { micro: 22, minor: 2, major: 7 }, package: "Debian 1:7.2+dfsg-7+deb12u18+b3" }, capabilities: ["oob"] },
});

/** A canned success reply. */
export interface FakeQmpReturn {
  /** The command's result. */
  readonly return: JsonValue;
}

/** A canned error reply. */
export interface FakeQmpError {
  /** QMP class and description. */
  readonly error: QmpErrorBody;
}

/** A canned reply; the peer adds the command's `id`. */
export type FakeQmpReply = FakeQmpReturn | FakeQmpError;

/** An event to send; `timestamp` defaults to now, `data` is sent only when given (as QEMU does). */
export interface FakeQmpEvent {
  /** Event name. */
  readonly event: string;
  /** Payload. */
  readonly data?: JsonObject;
  /** Emission time. */
  readonly timestamp?: QmpTimestamp;
}

/** Options of {@linkcode createFakeQmpPeer}. */
export interface FakeQmpPeerOptions {
  /** Greeting sent at once (default {@linkcode QEMU_7_2_GREETING}); `false` sends none. */
  greeting?: QmpGreeting | false;
  /** Answer `qmp_capabilities` without an expectation, and refuse commands before it (default true). */
  autoCapabilities?: boolean;
  /** Split all output, the greeting included, into pieces of this many bytes (default: whole lines). */
  fragmentBytes?: number;
}

/** Options of {@linkcode FakeQmpPeer.expect}. */
export interface FakeQmpExpectOptions {
  /** The arguments must equal this object exactly, or pass this predicate (default: not checked). */
  args?: JsonObject | ((args: JsonObject | undefined) => boolean);
  /** Events sent before the reply (QEMU sends `JOB_STATUS_CHANGE` before `block-stream`'s reply). */
  emitBefore?: readonly FakeQmpEvent[];
  /** Events sent right after the reply. */
  thenEmit?: readonly FakeQmpEvent[];
  /** Keep the reply (and `thenEmit`) until {@linkcode FakeQmpPeer.releaseHeld}; for out-of-order replies. */
  hold?: boolean;
  /** Hang up after the reply and `thenEmit` (QEMU does after `quit`). */
  thenHangUp?: boolean;
}

/** The fake peer's controls. Create it with {@linkcode createFakeQmpPeer}. */
export interface FakeQmpPeer extends AsyncDisposable {
  /** The client's end of the duplex: pass it to `QmpClient.connect()`. */
  readonly transport: QmpTransport;
  /** Every well-formed command received, in order. */
  readonly received: readonly QmpCommandMessage[];
  /** What went wrong so far (unexpected commands, bad JSON); `assertDone()` throws if not empty. */
  readonly failures: readonly string[];
  /** How many expectations are still waiting. */
  readonly remaining: number;
  /** Resolves when the client closes or cancels its end. */
  readonly clientClosed: Promise<void>;
  /**
   * Queues the next expected command.
   *
   * @param command Command name.
   * @param reply The reply to send.
   * @param options Argument check, events around the reply, hold, hang-up.
   */
  expect(command: string, reply: FakeQmpReply, options?: FakeQmpExpectOptions): void;
  /**
   * Sends an event now.
   *
   * @param event The event.
   */
  emit(event: FakeQmpEvent): void;
  /**
   * Splits subsequent output into pieces of `bytes` bytes (`Infinity` for whole writes again).
   *
   * @param bytes Piece size.
   */
  fragment(bytes: number): void;
  /**
   * Sends text or bytes as they are (no newline added).
   *
   * @param data What to send.
   */
  sendRaw(data: string | Uint8Array): void;
  /**
   * Sends the held replies.
   *
   * @param order `"fifo"` (default) or `"reverse"`.
   */
  releaseHeld(order?: "fifo" | "reverse"): void;
  /**
   * Resolves once `count` commands have been received in total.
   *
   * @param count Number of commands.
   */
  whenReceived(count: number): Promise<void>;
  /** Ends the output (the client reads EOF); later client writes fail. */
  hangUp(): void;
  /** Lets `assertDone()` pass with expectations left over. */
  allowUnused(): void;
  /** Throws an `Error` listing failures, unused expectations and unreleased held replies. */
  assertDone(): void;
}

interface Expectation {
  readonly command: string;
  readonly reply: FakeQmpReply;
  readonly options: FakeQmpExpectOptions;
}

/**
 * Creates a fake QMP peer. An unexpected command (wrong name, wrong arguments, or none expected) gets an
 * error reply of class `UnexpectedCommand` so the client does not hang, and is recorded as a failure.
 *
 * @param options Greeting, capabilities handling, fragmenting.
 * @returns The peer.
 * @example
 * ```ts
 * import { createFakeQmpPeer } from "./fake_peer.ts";
 * import { QmpClient } from "../client.ts";
 * await using peer = createFakeQmpPeer();
 * peer.expect("stop", { return: {} }, { thenEmit: [{ event: "STOP" }] });
 * await using qmp = await QmpClient.connect(peer.transport);
 * const stopped = qmp.waitFor("STOP");
 * await qmp.execute("stop");
 * if ((await stopped).event !== "STOP") throw new Error("unexpected");
 * ```
 */
export function createFakeQmpPeer(options: FakeQmpPeerOptions = {}): FakeQmpPeer {
  const encoder = new TextEncoder();
  const splitter = new LineSplitter();
  const expectations: Expectation[] = [];
  const held: Array<() => void> = [];
  const received: QmpCommandMessage[] = [];
  const failures: string[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const autoCapabilities = options.autoCapabilities ?? true;
  let fragmentBytes = checkFragment(options.fragmentBytes ?? Infinity);
  let negotiated = false;
  let hungUp = false;
  let outputOpen = true;
  let allowUnused = false;
  let out!: ReadableStreamDefaultController<Uint8Array>;
  let resolveClientClosed!: () => void;
  const clientClosed = new Promise<void>((resolve) => (resolveClientClosed = resolve));
  const clientGone = () => {
    outputOpen = false;
    resolveClientClosed();
  };

  const write = (data: string | Uint8Array) => {
    if (!outputOpen) return;
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    for (let offset = 0; offset < bytes.byteLength; offset += fragmentBytes) {
      out.enqueue(bytes.slice(offset, Math.min(bytes.byteLength, offset + fragmentBytes)));
    }
  };
  const send = (message: object) => write(JSON.stringify(message) + "\r\n");
  const sendEvent = (event: FakeQmpEvent) => send({ timestamp: event.timestamp ?? now(), event: event.event, ...(event.data ? { data: event.data } : {}) });
  const reply = (id: JsonValue | undefined, body: FakeQmpReply) => send(id === undefined ? body : { ...body, id });
  const hangUp = () => {
    hungUp = true;
    held.length = 0;
    if (outputOpen) out.close();
    outputOpen = false;
  };
  const refuse = (id: JsonValue | undefined, errorClass: string, desc: string) => {
    failures.push(desc);
    reply(id, { error: { class: errorClass, desc } });
  };

  const handle = (line: string) => {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      return refuse(undefined, "GenericError", `Client sent a line that is not JSON: ${line.slice(0, 200)}`);
    }
    if (!isJsonObject(message) || typeof message.execute !== "string") {
      return refuse(isJsonObject(message) ? message.id : undefined, "GenericError", `Client sent something that is not a command: ${line.slice(0, 200)}`);
    }
    const command = message as unknown as QmpCommandMessage;
    received.push(command);
    for (const waiter of waiters.splice(0)) {
      if (received.length >= waiter.count) waiter.resolve();
      else waiters.push(waiter);
    }
    if (autoCapabilities && !negotiated) {
      if (command.execute !== "qmp_capabilities") {
        return refuse(command.id, "CommandNotFound", `Command "${command.execute}" sent before capabilities negotiation`);
      }
      negotiated = true;
      return reply(command.id, { return: {} });
    }
    const next = expectations[0];
    if (!next) return refuse(command.id, "UnexpectedCommand", `Unexpected command ${describe(command)}: no command was expected`);
    if (next.command !== command.execute || !argsMatch(next.options.args, command.arguments)) {
      return refuse(command.id, "UnexpectedCommand", `Unexpected command ${describe(command)}: expected "${next.command}"${next.options.args && typeof next.options.args !== "function" ? ` with ${JSON.stringify(next.options.args)}` : ""}`);
    }
    expectations.shift();
    for (const event of next.options.emitBefore ?? []) sendEvent(event);
    const respond = () => {
      reply(command.id, next.reply);
      for (const event of next.options.thenEmit ?? []) sendEvent(event);
      if (next.options.thenHangUp) hangUp();
    };
    if (next.options.hold) held.push(respond);
    else respond();
  };

  const transport: QmpTransport = {
    readable: new ReadableStream<Uint8Array>({
      start(controller) {
        out = controller;
        if (options.greeting !== false) send(options.greeting ?? QEMU_7_2_GREETING);
      },
      cancel: clientGone,
    }),
    writable: new WritableStream<Uint8Array>({
      write(chunk) {
        if (hungUp) throw new Error("Fake QMP peer has hung up");
        for (const line of splitter.push(chunk)) handle(line);
      },
      close: clientGone,
      abort: clientGone,
    }),
    close() {
      if (outputOpen) out.close();
      clientGone();
      return Promise.resolve();
    },
  };

  const peer: FakeQmpPeer = {
    transport,
    received,
    failures,
    clientClosed,
    get remaining() {
      return expectations.length;
    },
    expect(command, replyBody, expectOptions = {}) {
      if (typeof command !== "string" || command === "") throw new TypeError("Invalid expected command: expected a non-empty string");
      if (!isJsonObject(replyBody) || (!("return" in replyBody) && !("error" in replyBody))) {
        throw new TypeError(`Invalid reply for expected command "${command}": expected { return } or { error }`);
      }
      expectations.push({ command, reply: replyBody, options: expectOptions });
    },
    emit(event) {
      if (hungUp) throw new Error(`Cannot emit "${event.event}": the fake QMP peer has hung up`);
      sendEvent(event);
    },
    fragment(bytes) {
      fragmentBytes = checkFragment(bytes);
    },
    sendRaw(data) {
      if (hungUp) throw new Error("Cannot send: the fake QMP peer has hung up");
      write(data);
    },
    releaseHeld(order = "fifo") {
      const list = held.splice(0);
      for (const respond of order === "reverse" ? list.reverse() : list) respond();
    },
    whenReceived(count) {
      if (received.length >= count) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push({ count, resolve }));
    },
    hangUp,
    allowUnused() {
      allowUnused = true;
    },
    assertDone() {
      const problems = [...failures];
      if (expectations.length > 0 && !allowUnused) {
        problems.push(`${expectations.length} expected command(s) never sent: ${expectations.map((e) => `"${e.command}"`).join(", ")}`);
      }
      if (held.length > 0) problems.push(`${held.length} held reply(ies) never released`);
      if (problems.length > 0) throw new Error(`Fake QMP peer: ${problems.join("; ")}`);
    },
    async [Symbol.asyncDispose]() {
      if (!hungUp) hangUp();
      peer.assertDone();
    },
  };
  return peer;
}

function checkFragment(bytes: number): number {
  if (bytes !== Infinity && (!Number.isSafeInteger(bytes) || bytes <= 0)) {
    throw new RangeError(`Invalid fragment size ${bytes}: expected a positive integer or Infinity`);
  }
  return bytes;
}

function argsMatch(expected: FakeQmpExpectOptions["args"], actual: JsonObject | undefined): boolean {
  if (expected === undefined) return true;
  if (typeof expected === "function") return expected(actual);
  return jsonEqual(expected, actual ?? {});
}

function describe(command: QmpCommandMessage): string {
  return `"${command.execute}"${command.arguments ? ` with ${JSON.stringify(command.arguments)}` : ""}`;
}

function now(): QmpTimestamp {
  const ms = Date.now();
  return { seconds: Math.floor(ms / 1000), microseconds: (ms % 1000) * 1000 };
}
