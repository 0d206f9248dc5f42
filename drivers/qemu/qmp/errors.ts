/**
 * Errors of the QMP client besides QMP's own error replies, which are `QmpError` from `core/errors.ts`
 * (it keeps the QMP `errorClass`, `desc` and `command`).
 *
 * ```
 * VirtError
 * └─ QmpError ("qmp-error")       an error reply (errorClass from QEMU), from core/errors.ts
 *    ├─ QmpDisconnectedError      code "connect-failed", errorClass "Disconnected": the connection is
 *    │                            gone; a pending command was lost
 *    └─ QmpProtocolError          errorClass "ProtocolError": QEMU (or whatever is on the socket)
 *                                 broke the protocol
 * ```
 *
 * @module
 */
import { QmpError, type VirtErrorOptions } from "../../../core/errors.ts";

/**
 * The QMP connection closed: the peer hung up, the socket failed, the client was closed, or the client
 * closed itself after a protocol error (then `cause` is that {@linkcode QmpProtocolError}). Every
 * command still waiting for its reply rejects with one of these; so does every `waitFor()`.
 *
 * @example
 * ```ts
 * import { QmpDisconnectedError } from "./errors.ts";
 * import { QmpError } from "virtkit";
 * const error = new QmpDisconnectedError("QMP connection closed", { command: "query-jobs" });
 * if (!(error instanceof QmpError) || error.code !== "connect-failed" || error.command !== "query-jobs") throw new Error("unexpected");
 * ```
 */
export class QmpDisconnectedError extends QmpError {
  /**
   * @param message What closed, naming the command when one was lost.
   * @param options The lost `command`, driver (default `"qemu"`) and cause.
   */
  constructor(message: string, options: VirtErrorOptions & { command?: string } = {}) {
    super({ code: "connect-failed", errorClass: "Disconnected", desc: message, driver: options.driver ?? "qemu", cause: options.cause });
    this.name = "QmpDisconnectedError";
    // Set here, not passed up: QmpError would prefix the message, which already names the lost command.
    if (options.command !== undefined) (this as { command?: string }).command = options.command;
  }
}

/**
 * The peer broke the QMP protocol: a line that is not JSON, not UTF-8, not an object, longer than the
 * limit, a missing or malformed greeting, or a reply to a command that was never sent. The client closes
 * the connection when this happens, because it can no longer tell which reply belongs to which command.
 *
 * @example
 * ```ts
 * import { QmpProtocolError } from "./errors.ts";
 * import { QmpError } from "virtkit";
 * const error = new QmpProtocolError("QMP peer sent a line that is not JSON", { line: "garbage" });
 * if (!(error instanceof QmpError) || error.errorClass !== "ProtocolError" || error.line !== "garbage") throw new Error("unexpected");
 * ```
 */
export class QmpProtocolError extends QmpError {
  /** The start of the offending line (at most 200 characters), when there is one. */
  readonly line?: string;

  /**
   * @param message What was wrong.
   * @param options The offending `line` (shortened here), driver (default `"qemu"`) and cause.
   */
  constructor(message: string, options: VirtErrorOptions & { line?: string } = {}) {
    super({ errorClass: "ProtocolError", desc: message, driver: options.driver ?? "qemu", cause: options.cause });
    this.name = "QmpProtocolError";
    if (options.line !== undefined) this.line = options.line.length > 200 ? `${options.line.slice(0, 200)}...` : options.line;
  }
}
