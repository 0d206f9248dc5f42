/**
 * Connection procedures of the REMOTE program: authentication list, feature probes, open and close,
 * identity. Numbers and shapes from libvirt's remote_protocol.x.
 *
 * @example
 * ```ts
 * import { CONNECT_OPEN, Feature } from "./connect.ts";
 * import { encode } from "../codec.ts";
 * const bytes = encode(CONNECT_OPEN.args, { name: "qemu:///session", flags: 0 });
 * if (bytes.length !== 28 || Feature.PROGRAM_KEEPALIVE !== 10) throw new Error("unexpected");
 * ```
 *
 * @module
 */
import { array, int, struct, uhyper, uint, voidCodec } from "../codec.ts";
import { nonnullString, procedure, remoteString } from "./common.ts";

/** `virDrvFeature` numbers a client probes with CONNECT_SUPPORTS_FEATURE. */
export const Feature = Object.freeze({ TYPED_PARAM_STRING: 9, PROGRAM_KEEPALIVE: 10, REMOTE_EVENT_CALLBACK: 14, REMOTE_CLOSE_CALLBACK: 15 });
/** `remote_auth_type`. */
export const AuthType = Object.freeze({ NONE: 0, SASL: 1, POLKIT: 2 });
/** CONNECT_OPEN flags. */
export const OpenFlags = Object.freeze({ READ_ONLY: 1 });

/** 1: `{ remote_string name; unsigned flags }` -> void. */
export const CONNECT_OPEN = procedure(1, "CONNECT_OPEN", struct({ name: remoteString, flags: uint }), voidCodec);
/** 2: void -> void. */
export const CONNECT_CLOSE = procedure(2, "CONNECT_CLOSE", voidCodec, voidCodec);
/** 3: void -> hypervisor type (`"QEMU"`, `"Test"`). */
export const CONNECT_GET_TYPE = procedure(3, "CONNECT_GET_TYPE", voidCodec, nonnullString);
/** 4: void -> hypervisor version. */
export const CONNECT_GET_VERSION = procedure(4, "CONNECT_GET_VERSION", voidCodec, uhyper);
/** 7: void -> capabilities XML. */
export const CONNECT_GET_CAPABILITIES = procedure(7, "CONNECT_GET_CAPABILITIES", voidCodec, nonnullString);
/** 59: void -> host name. */
export const CONNECT_GET_HOSTNAME = procedure(59, "CONNECT_GET_HOSTNAME", voidCodec, nonnullString);
/** 60: feature number -> 0/1. */
export const CONNECT_SUPPORTS_FEATURE = procedure(60, "CONNECT_SUPPORTS_FEATURE", int, int);
/** 66: void -> `remote_auth_type types<20>`. */
export const AUTH_LIST = procedure(66, "AUTH_LIST", voidCodec, array(int, 20));
/** 110: void -> the connection's URI. */
export const CONNECT_GET_URI = procedure(110, "CONNECT_GET_URI", voidCodec, nonnullString);
/** 157: void -> libvirt version. */
export const CONNECT_GET_LIB_VERSION = procedure(157, "CONNECT_GET_LIB_VERSION", voidCodec, uhyper);
/** 360: void -> void. */
export const CONNECT_REGISTER_CLOSE_CALLBACK = procedure(360, "CONNECT_REGISTER_CLOSE_CALLBACK", voidCodec, voidCodec);
/** 361: void -> void. */
export const CONNECT_UNREGISTER_CLOSE_CALLBACK = procedure(361, "CONNECT_UNREGISTER_CLOSE_CALLBACK", voidCodec, voidCodec);
