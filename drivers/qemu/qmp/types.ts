/**
 * The QMP wire shapes: JSON values, the greeting, commands, replies and events, as QEMU writes them
 * (one JSON object per line, `\r\n`-terminated in QEMU 7.2).
 *
 * @module
 */

/** Any JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;

/** A JSON object. */
export interface JsonObject {
  /** Members. */
  [key: string]: JsonValue;
}

/** QEMU's version triple as the greeting and `query-version` report it. */
export interface QemuVersion {
  /** Major version (7 for QEMU 7.2.22). */
  readonly major: number;
  /** Minor version. */
  readonly minor: number;
  /** Micro version. */
  readonly micro: number;
}

/** QEMU's version as the greeting and `query-version` report it. */
export interface QmpVersionInfo {
  /** The version triple. */
  readonly qemu: QemuVersion;
  /** The distribution's package string (`"Debian 1:7.2+dfsg-7+deb12u18+b3"`), often empty. */
  readonly package: string;
}

/** The body of {@linkcode QmpGreeting}. */
export interface QmpGreetingBody {
  /** QEMU's version. */
  readonly version: QmpVersionInfo;
  /** Capabilities the server offers (`"oob"`). */
  readonly capabilities: readonly string[];
}

/** The first line QEMU sends: `{"QMP": {"version": ..., "capabilities": ["oob"]}}`. */
export interface QmpGreeting {
  /** The greeting body. */
  readonly QMP: QmpGreetingBody;
}

/** A command as sent on the wire. */
export interface QmpCommandMessage {
  /** Command name. */
  readonly execute: string;
  /** Command arguments, absent when there are none. */
  readonly arguments?: JsonObject;
  /** Any JSON value; QEMU echoes it in the reply. */
  readonly id?: JsonValue;
}

/** QMP's error object: the class callers branch on and a description. */
export interface QmpErrorBody {
  /** QMP error class (`GenericError`, `DeviceNotActive`, `CommandNotFound`, ...). */
  readonly class: string;
  /** Human-readable description. */
  readonly desc: string;
}

/** A successful reply. */
export interface QmpReturnMessage {
  /** The command's result. */
  readonly return: JsonValue;
  /** The command's id, when it had one. */
  readonly id?: JsonValue;
}

/** A failed reply. */
export interface QmpErrorMessage {
  /** The error. */
  readonly error: QmpErrorBody;
  /** The command's id, when QEMU could read it. */
  readonly id?: JsonValue;
}

/** A reply of either kind. */
export type QmpReplyMessage = QmpReturnMessage | QmpErrorMessage;

/** When QEMU emitted an event (host wall clock). */
export interface QmpTimestamp {
  /** Seconds since the epoch. */
  readonly seconds: number;
  /** Microseconds within the second. */
  readonly microseconds: number;
}

/**
 * An asynchronous event. QEMU omits `data` for some events (`STOP`); the client always fills it in
 * (an empty object then), so listeners can read `event.data` without a check.
 *
 * @typeParam D Shape of `data`.
 */
export interface QmpEvent<D extends JsonObject = JsonObject> {
  /** Event name (`JOB_STATUS_CHANGE`, `BLOCK_JOB_COMPLETED`, ...). */
  readonly event: string;
  /** Event payload. */
  readonly data: D;
  /** When QEMU emitted it. */
  readonly timestamp: QmpTimestamp;
}

/** Anything QEMU writes to the socket. */
export type QmpServerMessage = QmpGreeting | QmpReplyMessage | QmpEvent;

/**
 * Checks that a value is a plain JSON object (not an array, not null).
 *
 * @param value The value to check.
 * @returns Whether it is an object.
 * @example
 * ```ts
 * import { isJsonObject } from "./types.ts";
 * if (!isJsonObject({ a: 1 }) || isJsonObject([1])) throw new Error("unexpected");
 * ```
 */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Structural equality of two JSON values (member order does not matter).
 *
 * @param a One value.
 * @param b The other.
 * @returns Whether they are equal.
 * @example
 * ```ts
 * import { jsonEqual } from "./types.ts";
 * if (!jsonEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })) throw new Error("unexpected");
 * ```
 */
export function jsonEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]));
  }
  if (!isJsonObject(a) || !isJsonObject(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => Object.hasOwn(b, key) && jsonEqual(a[key], b[key]));
}
