/**
 * libvirt's RPC protocol as a layer of its own, for the remote driver (client) and virtkitd (server):
 * XDR primitives and schema codecs, framing, message shapes and procedure numbers by area, error
 * mapping both ways, keepalive, streams, and a client over any byte channel.
 *
 * @example
 * ```ts
 * import { DOMAIN_LOOKUP_BY_NAME, encode, decode } from "./mod.ts";
 * const back = decode(DOMAIN_LOOKUP_BY_NAME.args, encode(DOMAIN_LOOKUP_BY_NAME.args, "test"));
 * if (back !== "test") throw new Error("unexpected");
 * ```
 *
 * @module
 */
export * from "./channel.ts";
export * from "./client.ts";
export * from "./codec.ts";
export * from "./errors.ts";
export * from "./packet.ts";
export * from "./protocol/mod.ts";
export * from "./protocol_error.ts";
export * from "./stream.ts";
export * from "./xdr.ts";
