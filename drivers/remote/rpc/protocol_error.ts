/**
 * The error for a peer that breaks the wire protocol (bad framing, bad XDR, an unexpected reply). Such a
 * connection cannot be trusted any more, so it is a {@linkcode ConnectError}: whoever sees it closes the
 * connection, and every call still pending on it is rejected.
 *
 * @module
 */
import { ConnectError } from "../../../core/errors.ts";

/**
 * A message from the peer that does not follow libvirt's RPC protocol.
 *
 * @example
 * ```ts
 * import { ProtocolError } from "./protocol_error.ts";
 * const error = new ProtocolError("length word 3 is below the header size");
 * if (error.code !== "connect-failed" || !error.message.includes("length word")) throw new Error("unexpected");
 * ```
 */
export class ProtocolError extends ConnectError {
  /**
   * @param message What the peer sent wrong.
   * @param options Cause, when wrapping.
   */
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { driver: "remote", ...options });
    this.name = "ProtocolError";
  }
}
