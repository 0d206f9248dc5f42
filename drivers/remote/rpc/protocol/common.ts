/**
 * Shapes shared by every area of libvirt's REMOTE program (remote_protocol.x, written here from its
 * documented definitions): object references, optional strings, typed parameters, the error record,
 * and {@linkcode procedure}, which ties a procedure number to the codecs of its arguments and reply.
 *
 * @module
 */
import {
  array,
  bool,
  type Codec,
  double,
  hyper,
  int,
  optional,
  string,
  struct,
  uhyper,
  uint,
  union,
} from "../codec.ts";
import { REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION } from "../packet.ts";
import { XdrError } from "../xdr.ts";

/** Bound of `remote_nonnull_string` (`REMOTE_STRING_MAX`, 4 MiB since libvirt 1.2). */
export const REMOTE_STRING_MAX = 4 * 1024 * 1024;

/** `remote_nonnull_string`. */
export const nonnullString: Codec<string> = string(REMOTE_STRING_MAX);
/** `remote_string`: an optional string (`undefined` is NULL). */
export const remoteString: Codec<string | undefined> = optional(nonnullString);

/** The value of each hex digit's char code (-1: not one). */
const HEX_DIGIT = Int8Array.from({ length: 128 }, (_, c) => {
  const ch = String.fromCharCode(c);
  return /[0-9a-fA-F]/.test(ch) ? parseInt(ch, 16) : -1;
});
const uuidBytes = new Uint8Array(16);

/**
 * `remote_uuid`: 16 raw bytes on the wire, the 8-4-4-4-12 text form in TypeScript. Every call carries
 * one (a domain reference), so it is parsed by char code rather than with a regular expression and
 * `parseInt` per byte (which showed in profiles of a call), and decoded through a cache
 * (`XdrReader.uuid`).
 */
export const uuid: Codec<string> = {
  encode(w, v) {
    if (typeof v !== "string" || v.length !== 36) throw new TypeError(`Invalid UUID ${JSON.stringify(v)}`);
    let at = 0;
    for (let i = 0; i < 16; i++) {
      if (at === 8 || at === 13 || at === 18 || at === 23) {
        if (v.charCodeAt(at) !== 0x2d) throw new TypeError(`Invalid UUID ${JSON.stringify(v)}`);
        at++;
      }
      const hi = HEX_DIGIT[v.charCodeAt(at)] ?? -1;
      const lo = HEX_DIGIT[v.charCodeAt(at + 1)] ?? -1;
      if (hi < 0 || lo < 0) throw new TypeError(`Invalid UUID ${JSON.stringify(v)}`);
      uuidBytes[i] = (hi << 4) | lo;
      at += 2;
    }
    w.fixedOpaque(uuidBytes);
  },
  decode: (r) => r.uuid(),
};

/** `remote_nonnull_domain`: name, UUID and id (-1 while inactive). */
export const domainRef = struct({ name: nonnullString, uuid, id: int });

/** `remote_nonnull_storage_pool`. */
export const poolRef = struct({ name: nonnullString, uuid });
/** `remote_nonnull_storage_vol`. */
export const volumeRef = struct({ pool: nonnullString, name: nonnullString, key: nonnullString });
/** `remote_nonnull_network` (only inside errors). */
export const networkRef = struct({ name: nonnullString, uuid });

/** Typed parameter types (`virTypedParameterType`). */
export const TypedParamType = Object.freeze({ INT: 1, UINT: 2, LLONG: 3, ULLONG: 4, DOUBLE: 5, BOOLEAN: 6, STRING: 7 });

/** `remote_typed_param_value`: the union on the parameter type. */
export const typedParamValue: Codec<{ type: number; value: number | string | boolean }> = union<number | string | boolean>({
  [TypedParamType.INT]: int as Codec<number | string | boolean>,
  [TypedParamType.UINT]: uint as Codec<number | string | boolean>,
  [TypedParamType.LLONG]: hyper as Codec<number | string | boolean>,
  [TypedParamType.ULLONG]: uhyper as Codec<number | string | boolean>,
  [TypedParamType.DOUBLE]: double as Codec<number | string | boolean>,
  [TypedParamType.BOOLEAN]: bool as Codec<number | string | boolean>,
  [TypedParamType.STRING]: nonnullString as Codec<number | string | boolean>,
});
/** `remote_typed_param`: a field name and its typed value. */
export const typedParam = struct({ field: nonnullString, value: typedParamValue });
/** One typed parameter. */
export type TypedParam = { field: string; value: { type: number; value: number | string | boolean } };
/**
 * A `remote_typed_param` list with its bound.
 *
 * @param max The bound.
 * @returns The codec.
 */
export function typedParams(max: number): Codec<TypedParam[]> {
  return array(typedParam, max);
}

/**
 * `virNetStreamHole`: the body of a STREAM_HOLE frame of a sparse stream, a hole of `length` bytes
 * (flags 0: libvirt defines none).
 *
 * @example
 * ```ts
 * import { decode, encode } from "../codec.ts";
 * import { streamHole } from "./common.ts";
 * const body = encode(streamHole, { length: 2 ** 40, flags: 0 });
 * if (body.length !== 12 || decode(streamHole, body).length !== 2 ** 40) throw new Error("unexpected");
 * ```
 */
export const streamHole = struct({ length: hyper, flags: uint });

/** `remote_error`: the error record of an ERROR reply (and of `virNetMessageError`). */
export const remoteError = struct({
  code: int,
  domain: int,
  message: remoteString,
  level: int,
  dom: optional(domainRef),
  str1: remoteString,
  str2: remoteString,
  str3: remoteString,
  int1: int,
  int2: int,
  net: optional(networkRef),
});
/** An error record as it travels. */
export interface RemoteErrorRecord {
  /** `virErrorNumber`. */
  code: number;
  /** `virErrorDomain` (which part of libvirt raised it). */
  domain: number;
  /** The message. */
  message: string | undefined;
  /** 1 warning, 2 error. */
  level: number;
  /** The domain it concerns. */
  dom: DomainRefValue | undefined;
  /** Extra strings. */
  str1: string | undefined;
  /** Extra strings. */
  str2: string | undefined;
  /** Extra strings. */
  str3: string | undefined;
  /** Extra numbers. */
  int1: number;
  /** Extra numbers. */
  int2: number;
  /** The network it concerns. */
  net: { name: string; uuid: string } | undefined;
}

/** The value of a {@linkcode domainRef}. */
export interface DomainRefValue {
  /** Domain name. */
  name: string;
  /** Domain UUID. */
  uuid: string;
  /** Running id, -1 while inactive. */
  id: number;
}
/** The value of a {@linkcode poolRef}. */
export interface PoolRefValue {
  /** Pool name. */
  name: string;
  /** Pool UUID. */
  uuid: string;
}
/** The value of a {@linkcode volumeRef}. */
export interface VolumeRefValue {
  /** Pool name. */
  pool: string;
  /** Volume name. */
  name: string;
  /** Volume key. */
  key: string;
}

/** One procedure of a program: its number and the codecs of its arguments and reply. */
export interface Procedure<A, R> {
  /** Program number. */
  readonly program: number;
  /** Program version. */
  readonly version: number;
  /** Procedure number. */
  readonly number: number;
  /** libvirt's name without `REMOTE_PROC_` (for messages). */
  readonly name: string;
  /** Codec of the CALL payload. */
  readonly args: Codec<A>;
  /** Codec of the REPLY payload. */
  readonly ret: Codec<R>;
}

/**
 * Declares a REMOTE program procedure.
 *
 * @param number Procedure number.
 * @param name libvirt's name without `REMOTE_PROC_`.
 * @param args Argument codec.
 * @param ret Reply codec.
 * @returns The frozen declaration.
 * @example
 * ```ts
 * import { procedure } from "./common.ts";
 * import { voidCodec, int } from "../codec.ts";
 * const p = procedure(60, "CONNECT_SUPPORTS_FEATURE", int, int);
 * if (p.number !== 60 || p.program !== 0x20008086 || p.ret !== int || voidCodec === undefined) throw new Error("unexpected");
 * ```
 */
export function procedure<A, R>(number: number, name: string, args: Codec<A>, ret: Codec<R>): Procedure<A, R> {
  return Object.freeze({ program: REMOTE_PROGRAM, version: REMOTE_PROTOCOL_VERSION, number, name, args, ret });
}

/**
 * A codec that accepts only the values of an enumeration (decoding anything else is an error).
 *
 * @param values The allowed numbers.
 * @returns The codec.
 */
export function enumeration(values: readonly number[]): Codec<number> {
  const allowed = new Set(values);
  return {
    encode(w, v) {
      if (!allowed.has(v)) throw new RangeError(`Value ${v} is not one of ${[...allowed].join(", ")}`);
      w.int(v);
    },
    decode(r) {
      const at = r.offset;
      const v = r.int();
      if (!allowed.has(v)) throw new XdrError(`value ${v} at offset ${at} is not one of ${[...allowed].join(", ")}`);
      return v;
    },
  };
}
