/**
 * The QMP client: greeting, capabilities negotiation, commands with ids and replies matched by id,
 * events to filtered listeners, and a clean failure of everything pending when the connection goes.
 *
 * @module
 */
import type { Clock } from "../../../core/clock.ts";
import { createRealClock } from "../../../core/clock.ts";
import { ConnectError, UnsupportedError } from "../../../core/errors.ts";
import type { SignalOptions } from "../../../core/options.ts";
import { parseServerLine } from "./_parse.ts";
import { PendingCommands } from "./_pending.ts";
import { QmpDisconnectedError, QmpProtocolError } from "./errors.ts";
import { type QmpEventFilter, type QmpEventListener, QmpEventRouter } from "./event_router.ts";
import { LineSplitter } from "./line_reader.ts";
import type { QmpTransport } from "./transport.ts";
import { isJsonObject, type JsonValue, type QmpEvent, type QmpGreeting } from "./types.ts";

/** Options of {@linkcode QmpClient.connect}. */
export interface QmpClientOptions extends SignalOptions {
  /** Give up on the greeting and negotiation after this long (default 10 000 ms). */
  timeoutMs?: number;
  /** Clock for every timeout (default the real one). */
  clock?: Clock;
  /** Longest line accepted from the peer, in bytes (default 16 MiB). */
  maxLineBytes?: number;
  /** Capabilities to enable in `qmp_capabilities` (default none; `"oob"` is the only one QEMU offers). */
  capabilities?: readonly string[];
  /** Gets what a throwing event listener threw (default: `console.error`). */
  onListenerError?: (error: unknown, event: QmpEvent) => void;
}

/** Options of {@linkcode QmpClient.waitFor}. */
export interface QmpWaitOptions extends SignalOptions {
  /** Reject with a `TimeoutError` `DOMException` after this long, on the client's clock. */
  timeoutMs?: number;
}

type State = "greeting" | "negotiating" | "ready" | "closed";

/**
 * A QMP connection. Commands may overlap: each carries a numeric `id` and its reply is found by it, so
 * replies may come in any order. Events go to listeners registered with {@linkcode QmpClient.on} or
 * awaited with {@linkcode QmpClient.waitFor}; register them before the command that causes the event,
 * since QEMU may send the event before the reply (`block-stream` sends `JOB_STATUS_CHANGE` first).
 *
 * When the connection ends, every pending command and `waitFor()` rejects with
 * {@linkcode QmpDisconnectedError}, and `closed` settles: it resolves after `close()` or after the peer
 * hangs up following a successful `quit`, and rejects with the reason otherwise (a
 * {@linkcode QmpDisconnectedError}, or the {@linkcode QmpProtocolError} that made the client give up).
 *
 * @example Against the fake peer
 * ```ts
 * import { QmpClient } from "./client.ts";
 * import { createFakeQmpPeer } from "./testing/mod.ts";
 * await using peer = createFakeQmpPeer();
 * peer.expect("query-status", { return: { status: "running", running: true } });
 * await using qmp = await QmpClient.connect(peer.transport);
 * const status = await qmp.execute<{ running: boolean }>("query-status");
 * if (!status.running) throw new Error("unexpected");
 * ```
 */
export class QmpClient implements AsyncDisposable {
  readonly #transport: QmpTransport;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #splitter: LineSplitter;
  readonly #clock: Clock;
  readonly #router = new QmpEventRouter();
  readonly #encoder = new TextEncoder();
  readonly #pending = new PendingCommands();
  readonly #closeHooks = new Set<(reason: Error | undefined) => void>();
  readonly #onListenerError: (error: unknown, event: QmpEvent) => void;
  #state: State = "greeting";
  #greeting: QmpGreeting | undefined;
  #greetingWaiter: { resolve: (greeting: QmpGreeting) => void; reject: (error: unknown) => void } | undefined;
  #oob = false;
  #quitAcknowledged = false;
  #closeReason: Error | undefined;
  #resolveClosed!: () => void;
  #rejectClosed!: (reason: Error) => void;

  /**
   * Settles when the connection is gone: resolves after {@linkcode QmpClient.close} or a hang-up after
   * `quit`, rejects with the reason otherwise. Never an unhandled rejection: awaiting it is optional.
   */
  readonly closed: Promise<void>;

  private constructor(transport: QmpTransport, options: QmpClientOptions) {
    this.#transport = transport;
    this.#reader = transport.readable.getReader();
    this.#writer = transport.writable.getWriter();
    this.#splitter = new LineSplitter({ maxLineBytes: options.maxLineBytes });
    this.#clock = options.clock ?? createRealClock();
    this.#onListenerError = options.onListenerError ?? ((error, event) => console.error(`QMP listener for "${event.event}" threw`, error));
    this.closed = new Promise<void>((resolve, reject) => {
      this.#resolveClosed = resolve;
      this.#rejectClosed = reject;
    });
    this.closed.catch(() => {});
  }

  /**
   * Reads the greeting and negotiates capabilities.
   *
   * @param transport A connected byte duplex (see `connectUnixSocket`).
   * @param options Timeout, clock, line limit, capabilities, listener error hook, signal.
   * @returns A client in command mode.
   * @throws {ConnectError} When the greeting or negotiation does not finish within `timeoutMs`.
   * @throws {QmpProtocolError} When the greeting is malformed.
   * @throws {QmpDisconnectedError} When the peer hangs up first.
   * @throws {UnsupportedError} When a requested capability is not offered.
   * @throws {QmpError} When `qmp_capabilities` is refused.
   */
  static async connect(transport: QmpTransport, options: QmpClientOptions = {}): Promise<QmpClient> {
    if (!transport || !(transport.readable instanceof ReadableStream) || !(transport.writable instanceof WritableStream)) {
      throw new TypeError("Invalid QMP transport: expected { readable, writable, close }");
    }
    const timeoutMs = options.timeoutMs ?? 10_000;
    if (!(timeoutMs > 0)) throw new RangeError(`Invalid timeoutMs ${timeoutMs}: expected a positive number`);
    options.signal?.throwIfAborted();
    const client = new QmpClient(transport, options);
    const timer = new AbortController();
    try {
      await client.#within(client.#handshake(options.capabilities ?? []), timeoutMs, timer.signal, options.signal);
    } catch (error) {
      client.#shutdown(error instanceof Error ? error : new ConnectError(String(error)));
      await transport.close().catch(() => {});
      throw error;
    } finally {
      timer.abort();
    }
    return client;
  }

  /** The greeting QEMU sent (its version and offered capabilities). */
  get greeting(): QmpGreeting {
    return this.#greeting!;
  }

  /** Whether the connection is gone. */
  get isClosed(): boolean {
    return this.#state === "closed";
  }

  /**
   * Sends a command and resolves with its `return` value.
   *
   * @typeParam T The shape of the result, as the QAPI schema documents it (not checked at run time).
   * @param command Command name (`"block-stream"`).
   * @param args Its arguments: a plain object serialised with `JSON.stringify` (members that are
   *   `undefined` are left out), so a typed interface such as `{ device: string; speed?: number }` fits.
   * @param options Aborting rejects with the signal's reason; the command may still run in QEMU, and its
   *   late reply is dropped.
   * @returns The command's result.
   * @throws {QmpError} When QEMU answers with an error (its `errorClass` and `desc` are kept).
   * @throws {QmpDisconnectedError} When the connection closes before the reply.
   * @throws {TypeError} When `command` or `args` is malformed.
   */
  async execute<T = JsonValue>(command: string, args?: object, options: SignalOptions = {}): Promise<T> {
    if (typeof command !== "string" || command === "") throw new TypeError("Invalid QMP command: expected a non-empty string");
    if (args !== undefined && !isJsonObject(args)) throw new TypeError(`Invalid arguments for QMP command "${command}": expected an object`);
    options.signal?.throwIfAborted();
    return (await this.#send(command, args, options.signal)) as T;
  }

  /**
   * Registers an event listener.
   *
   * @param eventName QMP event name (`"BLOCK_JOB_COMPLETED"`), or `"*"` for every event.
   * @param listener Called synchronously, in arrival order.
   * @param filter A predicate, or an object every member of which must equal `event.data`'s.
   * @returns A function that unregisters the listener.
   * @throws {TypeError} On a bad name, listener or filter.
   */
  on(eventName: string, listener: QmpEventListener, filter?: QmpEventFilter): () => void {
    return this.#router.add(eventName, listener, filter);
  }

  /**
   * Resolves with the next matching event. Call it before the command that causes the event.
   *
   * @param eventName QMP event name, or `"*"`.
   * @param filter A predicate or a subset of `data`.
   * @param options Signal (rejects with its reason) and `timeoutMs` (rejects with a `TimeoutError`).
   * @returns The event.
   * @throws {QmpDisconnectedError} When the connection closes first.
   */
  waitFor(eventName: string, filter?: QmpEventFilter, options: QmpWaitOptions = {}): Promise<QmpEvent> {
    const { signal, timeoutMs } = options;
    if (timeoutMs !== undefined && !(timeoutMs > 0)) throw new RangeError(`Invalid timeoutMs ${timeoutMs}: expected a positive number`);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#state === "closed") return Promise.reject(this.#lost(`Cannot wait for QMP event "${eventName}"`, this.#closeReason));
    return new Promise<QmpEvent>((resolve, reject) => {
      const timer = new AbortController();
      let done = false;
      const settle = (finish: () => void) => {
        if (done) return;
        done = true;
        off();
        this.#closeHooks.delete(onClose);
        signal?.removeEventListener("abort", onAbort);
        timer.abort();
        finish();
      };
      const off = this.on(eventName, (event) => settle(() => resolve(event)), filter);
      const onClose = (reason: Error | undefined) =>
        settle(() => reject(this.#lost(`Stopped waiting for QMP event "${eventName}"`, reason)));
      const onAbort = () => settle(() => reject(signal!.reason));
      this.#closeHooks.add(onClose);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeoutMs === undefined) return;
      this.#clock.sleep(timeoutMs, timer.signal).then(
        () => settle(() => reject(new DOMException(`Timed out after ${timeoutMs} ms waiting for QMP event "${eventName}"`, "TimeoutError"))),
        () => {},
      );
    });
  }

  /**
   * Closes the connection. Pending commands reject with {@linkcode QmpDisconnectedError}; `closed`
   * resolves. Calling it again is harmless.
   */
  async close(): Promise<void> {
    this.#shutdown(undefined);
    await this.#transport.close().catch(() => {});
  }

  /** Same as {@linkcode QmpClient.close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #handshake(capabilities: readonly string[]): Promise<void> {
    void this.#readLoop();
    const greeting = await new Promise<QmpGreeting>((resolve, reject) => {
      this.#greetingWaiter = { resolve, reject };
    });
    this.#greeting = greeting;
    this.#state = "negotiating";
    for (const capability of capabilities) {
      if (!greeting.QMP.capabilities.includes(capability)) {
        throw new UnsupportedError(`qmp-capability-${capability}`, { driver: "qemu", detail: `QEMU offers ${JSON.stringify(greeting.QMP.capabilities)}` });
      }
    }
    await this.#send("qmp_capabilities", capabilities.length > 0 ? { enable: [...capabilities] } : undefined, undefined);
    this.#oob = capabilities.includes("oob");
    if (this.#state === "negotiating") this.#state = "ready";
  }

  async #within<T>(work: Promise<T>, timeoutMs: number, timer: AbortSignal, signal: AbortSignal | undefined): Promise<T> {
    const limits = new Promise<never>((_, reject) => {
      this.#clock.sleep(timeoutMs, timer).then(
        () => reject(new ConnectError(`Timed out after ${timeoutMs} ms waiting for the QMP greeting and negotiation`, { driver: "qemu" })),
        () => {},
      );
      if (signal?.aborted) reject(signal.reason);
      signal?.addEventListener("abort", () => reject(signal.reason), { once: true, signal: timer });
    });
    return await Promise.race([work, limits]);
  }

  #send(command: string, args: object | undefined, signal: AbortSignal | undefined): Promise<JsonValue> {
    if (this.#state === "closed") {
      return Promise.reject(this.#lost(`Cannot send QMP command "${command}"`, this.#closeReason, command));
    }
    const { id, result } = this.#pending.add(command, signal);
    const line = JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id }) + "\n";
    this.#writer.write(this.#encoder.encode(line)).catch((error) =>
      this.#shutdown(new QmpDisconnectedError(`QMP connection failed while sending "${command}"`, { cause: error }))
    );
    return result;
  }

  async #readLoop(): Promise<void> {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await this.#reader.read();
      } catch (error) {
        return this.#onEnd(error);
      }
      if (chunk.done) return this.#onEnd(undefined);
      try {
        for (const line of this.#splitter.push(chunk.value)) {
          if (this.#state === "closed") return;
          this.#handleLine(line);
        }
      } catch (error) {
        this.#shutdown(error instanceof Error ? error : new QmpProtocolError(String(error)));
        return void this.#transport.close().catch(() => {});
      }
    }
  }

  #onEnd(error: unknown): void {
    if (this.#state === "closed") return;
    // After an acknowledged `quit` QEMU is exiting: EOF or a reset is the expected end, not a failure.
    if (this.#quitAcknowledged && this.#pending.size === 0) return this.#shutdown(undefined);
    const message = error === undefined ? "QMP peer closed the connection" : `QMP connection failed: ${error instanceof Error ? error.message : String(error)}`;
    this.#shutdown(new QmpDisconnectedError(message, { cause: error }));
    void this.#transport.close().catch(() => {});
  }

  #handleLine(line: string): void {
    const message = parseServerLine(line);
    if (this.#state === "greeting") {
      if (message.kind !== "greeting") throw new QmpProtocolError("QMP peer did not start with a greeting", { line });
      this.#greetingWaiter?.resolve(message.greeting);
      this.#greetingWaiter = undefined;
      return;
    }
    if (message.kind === "greeting") throw new QmpProtocolError("QMP peer sent a second greeting", { line });
    if (message.kind === "event") return this.#router.dispatch(message.event, this.#onListenerError);
    const command = this.#pending.settle(message.reply, !this.#oob, line);
    if (command === "quit" && "return" in message.reply) this.#quitAcknowledged = true;
  }

  #lost(what: string, reason: Error | undefined, command?: string): QmpDisconnectedError {
    const why = reason ? reason.message : "the client closed the connection";
    return new QmpDisconnectedError(`${what}: ${why}`, { command, cause: reason });
  }

  #shutdown(reason: Error | undefined): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#closeReason = reason;
    this.#pending.failAll((command) => this.#lost(`QMP command "${command}" was lost`, reason, command));
    this.#greetingWaiter?.reject(reason ?? this.#lost("QMP connection closed before the greeting", undefined));
    this.#greetingWaiter = undefined;
    for (const hook of [...this.#closeHooks]) hook(reason);
    this.#closeHooks.clear();
    this.#reader.cancel().catch(() => {});
    this.#writer.abort().catch(() => {});
    if (reason) this.#rejectClosed(reason);
    else this.#resolveClosed();
  }
}
