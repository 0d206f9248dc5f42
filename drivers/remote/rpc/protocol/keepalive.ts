/**
 * libvirt's KEEPALIVE program (virkeepaliveprotocol.x): PING and PONG, each a MESSAGE with serial 0,
 * status OK and no payload.
 *
 * @example
 * ```ts
 * import { KEEPALIVE_PING, KEEPALIVE_PONG } from "./keepalive.ts";
 * if (KEEPALIVE_PING.number !== 1 || KEEPALIVE_PONG.number !== 2 || KEEPALIVE_PING.program !== 0x6b656570) throw new Error("unexpected");
 * ```
 *
 * @module
 */
import { voidCodec } from "../codec.ts";
import { KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION } from "../packet.ts";
import type { Procedure } from "./common.ts";

/** PING: the peer must answer PONG. */
export const KEEPALIVE_PING: Procedure<void, void> = Object.freeze({
  program: KEEPALIVE_PROGRAM,
  version: KEEPALIVE_PROTOCOL_VERSION,
  number: 1,
  name: "KEEPALIVE_PING",
  args: voidCodec,
  ret: voidCodec,
});
/** PONG: the answer to a PING. */
export const KEEPALIVE_PONG: Procedure<void, void> = Object.freeze({ ...KEEPALIVE_PING, number: 2, name: "KEEPALIVE_PONG" });
