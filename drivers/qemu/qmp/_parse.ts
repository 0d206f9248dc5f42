/**
 * Checks what arrives on the wire before anything trusts its shape. Every failure is a
 * {@linkcode QmpProtocolError} carrying the start of the offending line.
 *
 * @module
 */
import { QmpProtocolError } from "./errors.ts";
import { isJsonObject, type JsonObject, type QmpEvent, type QmpGreeting, type QmpReplyMessage } from "./types.ts";

/** One parsed line from the server. */
export type ParsedServerLine =
  | { readonly kind: "greeting"; readonly greeting: QmpGreeting }
  | { readonly kind: "event"; readonly event: QmpEvent }
  | { readonly kind: "reply"; readonly reply: QmpReplyMessage };

/**
 * Parses one line the server sent.
 *
 * @param line One line, without its terminator.
 * @returns What it is, with its shape checked.
 * @throws {QmpProtocolError} When it is not JSON or not a QMP message.
 */
export function parseServerLine(line: string): ParsedServerLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    throw new QmpProtocolError("QMP peer sent a line that is not JSON", { line, cause: error });
  }
  if (!isJsonObject(value)) throw new QmpProtocolError("QMP peer sent a line that is not a JSON object", { line });
  if (Object.hasOwn(value, "QMP")) return { kind: "greeting", greeting: checkGreeting(value, line) };
  if (Object.hasOwn(value, "event")) return { kind: "event", event: checkEvent(value, line) };
  if (Object.hasOwn(value, "return")) return { kind: "reply", reply: value as unknown as QmpReplyMessage };
  if (Object.hasOwn(value, "error")) {
    const error = value.error;
    if (!isJsonObject(error) || typeof error.class !== "string" || typeof error.desc !== "string") {
      throw new QmpProtocolError("QMP peer sent an error reply without a string class and desc", { line });
    }
    return { kind: "reply", reply: value as unknown as QmpReplyMessage };
  }
  throw new QmpProtocolError("QMP peer sent an object that is neither a reply nor an event", { line });
}

function checkGreeting(value: JsonObject, line: string): QmpGreeting {
  const body = value.QMP;
  const version = isJsonObject(body) ? body.version : undefined;
  const qemu = isJsonObject(version) ? version.qemu : undefined;
  const ok = isJsonObject(body) && Array.isArray(body.capabilities) &&
    body.capabilities.every((c) => typeof c === "string") && isJsonObject(qemu) &&
    ["major", "minor", "micro"].every((k) => Number.isInteger(qemu[k]));
  if (!ok) throw new QmpProtocolError("QMP peer sent a malformed greeting", { line });
  return value as unknown as QmpGreeting;
}

function checkEvent(value: JsonObject, line: string): QmpEvent {
  const { event, data, timestamp } = value;
  if (typeof event !== "string" || event === "") throw new QmpProtocolError("QMP peer sent an event without a name", { line });
  if (data !== undefined && !isJsonObject(data)) throw new QmpProtocolError(`QMP event "${event}" has data that is not an object`, { line });
  const time = isJsonObject(timestamp) && typeof timestamp.seconds === "number" && typeof timestamp.microseconds === "number"
    ? { seconds: timestamp.seconds, microseconds: timestamp.microseconds }
    : { seconds: 0, microseconds: 0 };
  return { event, data: data ?? {}, timestamp: time };
}
