/**
 * CHAP for iSCSI login (RFC 7143 §12.1.3 over RFC 1994): the initiator proves it knows the secret by
 * answering the target's challenge with MD5(identifier || secret || challenge). Only MD5
 * (`CHAP_A=5`) is offered: it is the one algorithm every target has, and the one tgtd and libvirt use.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";

/** CHAP algorithm number of MD5. */
export const CHAP_MD5 = "5";

/**
 * Decodes a CHAP binary value: `0x` hex or `0b` base64 (RFC 7143 §6.1).
 *
 * @param value The key's value.
 * @returns The bytes.
 * @throws {TypeError} For another encoding or a malformed value.
 * @example
 * ```ts
 * import { decodeChapBinary } from "./chap.ts";
 * if (decodeChapBinary("0x0aff").join() !== "10,255") throw new Error("unexpected");
 * ```
 */
export function decodeChapBinary(value: string): Uint8Array {
  const body = value.slice(2);
  const prefix = value.slice(0, 2).toLowerCase();
  if (prefix === "0x" && /^[0-9a-fA-F]+$/.test(body)) {
    const hex = body.length % 2 === 1 ? `0${body}` : body;
    return Uint8Array.from(hex.match(/../g)!.map((b) => parseInt(b, 16)));
  }
  if (prefix === "0b" && /^[A-Za-z0-9+/]+=*$/.test(body)) return Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
  throw new TypeError(`Invalid CHAP value ${JSON.stringify(value.slice(0, 40))}: expected 0x-hex or 0b-base64`);
}

/**
 * The CHAP response to a challenge.
 *
 * @param identifier `CHAP_I` (0..255).
 * @param secret The shared secret.
 * @param challenge `CHAP_C`, decoded.
 * @returns `CHAP_R`, as `0x` hex.
 * @example RFC 1994's construction, checked against an MD5 computed separately
 * ```ts
 * import { chapResponse } from "./chap.ts";
 * import { createHash, timingSafeEqual } from "node:crypto";
 * const challenge = new Uint8Array([1, 2, 3]);
 * const expected = createHash("md5").update(Buffer.from([7])).update("secret").update(challenge).digest("hex");
 * if (chapResponse(7, "secret", challenge) !== `0x${expected}`) throw new Error("unexpected");
 * ```
 */
export function chapResponse(identifier: number, secret: string, challenge: Uint8Array): string {
  const digest = createHash("md5").update(Uint8Array.of(identifier & 0xff)).update(secret, "utf8").update(challenge).digest("hex");
  return `0x${digest}`;
}

/**
 * A fresh challenge of ours for mutual CHAP: a random identifier and 16 random bytes (RFC 1994 wants
 * them unpredictable; RFC 7143 §12.1.3 has the target answer them with its own secret).
 *
 * @returns The identifier, the challenge bytes, and `CHAP_C` as `0x` hex.
 * @example
 * ```ts
 * import { chapChallenge, decodeChapBinary } from "./chap.ts";
 * const { identifier, challenge, encoded } = chapChallenge();
 * if (identifier < 0 || identifier > 255 || challenge.length !== 16 || decodeChapBinary(encoded).join() !== challenge.join()) throw new Error("unexpected");
 * ```
 */
export function chapChallenge(): { identifier: number; challenge: Uint8Array; encoded: string } {
  const bytes = crypto.getRandomValues(new Uint8Array(17));
  const challenge = bytes.subarray(1);
  return { identifier: bytes[0]!, challenge, encoded: `0x${Array.from(challenge, (b) => b.toString(16).padStart(2, "0")).join("")}` };
}

/**
 * Whether a target's `CHAP_R` answers our challenge with the secret we expect (compared in constant time).
 *
 * @param identifier Our `CHAP_I`.
 * @param secret The target's secret.
 * @param challenge Our `CHAP_C`, as bytes.
 * @param response The target's `CHAP_R` value.
 * @returns `true` when it matches; `false` for another digest or a malformed value.
 * @example
 * ```ts
 * import { chapResponse, verifyChapResponse } from "./chap.ts";
 * const challenge = new Uint8Array([4, 5, 6]);
 * if (!verifyChapResponse(9, "target-secret", challenge, chapResponse(9, "target-secret", challenge))) throw new Error("unexpected");
 * if (verifyChapResponse(9, "other", challenge, chapResponse(9, "target-secret", challenge)) || verifyChapResponse(9, "x", challenge, "junk")) throw new Error("unexpected");
 * ```
 */
export function verifyChapResponse(identifier: number, secret: string, challenge: Uint8Array, response: string): boolean {
  let got: Uint8Array;
  try {
    got = decodeChapBinary(response);
  } catch {
    return false;
  }
  const expected = decodeChapBinary(chapResponse(identifier, secret, challenge));
  return got.length === expected.length && timingSafeEqual(got, expected);
}
