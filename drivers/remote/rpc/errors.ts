/**
 * libvirt's error records (`remote_error`) mapped onto virtkit's error tree and back. The original
 * code, domain and message stay readable on the mapped error as `libvirt` (see {@linkcode libvirtErrorOf}),
 * so nothing libvirt said is lost; a daemon turning a virtkit error into a record reuses them when present.
 *
 * @module
 */
import { ConflictError, ConnectError, NotFoundError, type ObjectType, StateError, UnsupportedError, VirtError } from "../../../core/errors.ts";
import type { RemoteErrorRecord } from "./protocol/common.ts";

/** `virErrorNumber` values virtkit maps (the others become `VirtError` with code `"internal"`). */
export const LibvirtErrorCode = Object.freeze({
  INTERNAL_ERROR: 1,
  NO_SUPPORT: 3,
  NO_CONNECT: 5,
  INVALID_CONN: 6,
  INVALID_ARG: 8,
  OPERATION_FAILED: 9,
  XML_ERROR: 27,
  DOM_EXIST: 28,
  OPERATION_DENIED: 29,
  SYSTEM_ERROR: 38,
  RPC: 39,
  NO_DOMAIN: 42,
  AUTH_FAILED: 45,
  NO_STORAGE_POOL: 49,
  NO_STORAGE_VOL: 50,
  OPERATION_INVALID: 55,
  CONFIG_UNSUPPORTED: 67,
  OPERATION_TIMEOUT: 68,
  STORAGE_POOL_BUILT: 76,
  OPERATION_ABORTED: 78,
  BLOCK_COPY_ACTIVE: 83,
  OPERATION_UNSUPPORTED: 84,
  RESOURCE_BUSY: 87,
  ACCESS_DENIED: 88,
  STORAGE_VOL_EXIST: 90,
});

/** `virErrorDomain` values used here. */
export const LibvirtErrorDomain = Object.freeze({ NONE: 0, DOM: 6, RPC: 7, QEMU: 10, TEST: 12, REMOTE: 13, STORAGE: 18, DOMAIN: 20 });

/** What libvirt said, kept on a mapped error. */
export interface LibvirtErrorDetails {
  /** `virErrorNumber`. */
  readonly code: number;
  /** `virErrorDomain`. */
  readonly domain: number;
  /** libvirt's message, verbatim. */
  readonly message: string;
  /** 1 warning, 2 error. */
  readonly level: number;
}

const DETAILS = new WeakMap<object, LibvirtErrorDetails>();

/**
 * The libvirt code, domain and message behind an error, if it came from (or is bound for) libvirt's
 * protocol.
 *
 * @param error Any thrown value.
 * @returns The details, or `undefined`.
 * @example
 * ```ts
 * import { errorFromRemote, libvirtErrorOf } from "./errors.ts";
 * const error = errorFromRemote({ code: 42, domain: 10, message: "Domain not found: no domain with matching name 'x'", level: 2,
 *   dom: undefined, str1: undefined, str2: undefined, str3: undefined, int1: 0, int2: 0, net: undefined }, { objectName: "x" });
 * if (error.code !== "not-found" || libvirtErrorOf(error)?.code !== 42) throw new Error("unexpected");
 * ```
 */
export function libvirtErrorOf(error: unknown): LibvirtErrorDetails | undefined {
  return typeof error === "object" && error !== null ? DETAILS.get(error) : undefined;
}

/** Context that makes a mapped error name its object. */
export interface ErrorContext {
  /** The object the call was about (domain, pool or volume name). */
  readonly objectName?: string;
  /** What was being done (`"start domain \"vm\""`), for messages and `UnsupportedError.operation`. */
  readonly operation?: string;
}

/**
 * Maps a `remote_error` onto virtkit's error tree: NO_DOMAIN, NO_STORAGE_POOL and NO_STORAGE_VOL to
 * `NotFoundError`, NO_SUPPORT and OPERATION_UNSUPPORTED to `UnsupportedError`, OPERATION_INVALID to
 * `StateError`, DOM_EXIST, STORAGE_VOL_EXIST, BLOCK_COPY_ACTIVE and RESOURCE_BUSY to `ConflictError`,
 * connection and auth failures to `ConnectError`, anything else to `VirtError` with code `"internal"`.
 *
 * @param record The record of an ERROR reply.
 * @param context The object and operation, for the message.
 * @returns The error (not thrown).
 */
export function errorFromRemote(record: RemoteErrorRecord, context: ErrorContext = {}): VirtError {
  const message = record.message ?? `libvirt error ${record.code}`;
  const driver = "remote";
  const C = LibvirtErrorCode;
  const notFound = (type: ObjectType) =>
    new NotFoundError(type, context.objectName ?? record.str2 ?? record.dom?.name ?? "?", { driver, detail: message });
  let error: VirtError;
  switch (record.code) {
    case C.NO_DOMAIN:
      error = notFound("domain");
      break;
    case C.NO_STORAGE_POOL:
      error = notFound("pool");
      break;
    case C.NO_STORAGE_VOL:
      error = notFound("volume");
      break;
    case C.NO_SUPPORT:
    case C.OPERATION_UNSUPPORTED:
      error = new UnsupportedError(context.operation ?? "operation", { driver, detail: message });
      break;
    case C.OPERATION_INVALID:
      error = new StateError(context.operation ? `Cannot ${context.operation}: ${message}` : message, { state: "invalid", driver });
      break;
    case C.DOM_EXIST:
    case C.STORAGE_VOL_EXIST:
    case C.BLOCK_COPY_ACTIVE:
    case C.RESOURCE_BUSY:
      error = new ConflictError(context.operation ? `Cannot ${context.operation}: ${message}` : message, { driver });
      break;
    case C.NO_CONNECT:
    case C.INVALID_CONN:
    case C.RPC:
    case C.AUTH_FAILED:
      error = new ConnectError(message, { driver });
      break;
    default:
      error = new VirtError("internal", context.operation ? `Cannot ${context.operation}: ${message}` : message, { driver });
  }
  DETAILS.set(error, Object.freeze({ code: record.code, domain: record.domain, message, level: record.level }));
  return error;
}

/**
 * Maps any thrown value onto a `remote_error` record, for a server's ERROR reply: the inverse of
 * {@linkcode errorFromRemote}. An error that carries libvirt details keeps them.
 *
 * @param error What the handler threw.
 * @param domain The `virErrorDomain` to report (default REMOTE).
 * @returns The record.
 * @example
 * ```ts
 * import { remoteErrorFrom } from "./errors.ts";
 * import { NotFoundError } from "virtkit";
 * const record = remoteErrorFrom(new NotFoundError("volume", "v1"));
 * if (record.code !== 50 || record.message !== 'Cannot find volume "v1"') throw new Error("unexpected");
 * ```
 */
export function remoteErrorFrom(error: unknown, domain: number = LibvirtErrorDomain.REMOTE): RemoteErrorRecord {
  const kept = libvirtErrorOf(error);
  const message = error instanceof Error ? error.message : String(error);
  const base = { dom: undefined, str1: message, str2: undefined, str3: undefined, int1: -1, int2: -1, net: undefined };
  if (kept) return { ...base, code: kept.code, domain: kept.domain, message: kept.message, level: kept.level };
  return { ...base, code: codeOf(error), domain, message, level: 2 };
}

function codeOf(error: unknown): number {
  const C = LibvirtErrorCode;
  if (error instanceof NotFoundError) {
    return error.objectType === "pool" ? C.NO_STORAGE_POOL : error.objectType === "volume" ? C.NO_STORAGE_VOL : error.objectType === "domain" ? C.NO_DOMAIN : C.OPERATION_INVALID;
  }
  if (error instanceof UnsupportedError) return C.NO_SUPPORT;
  if (error instanceof StateError) return C.OPERATION_INVALID;
  if (error instanceof ConflictError) return error.message.toLowerCase().includes("volume") ? C.STORAGE_VOL_EXIST : C.DOM_EXIST;
  if (error instanceof ConnectError) return C.RPC;
  if (error instanceof TypeError || error instanceof RangeError) return C.INVALID_ARG;
  if (error instanceof VirtError && error.code === "job-failed") return C.OPERATION_FAILED;
  return C.INTERNAL_ERROR;
}
