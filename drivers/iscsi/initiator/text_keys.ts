/**
 * iSCSI text keys (RFC 7143 §6): `key=value` pairs, each ended by a NUL, in the data segment of Login
 * and Text PDUs. Keys keep their order; a key may repeat (SendTargets answers repeat `TargetAddress`).
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Key-value pairs in wire order. */
export type TextPairs = ReadonlyArray<readonly [string, string]>;

/**
 * Encodes pairs as a data segment.
 *
 * @param pairs The pairs, in order.
 * @returns The bytes (each pair NUL-terminated).
 * @throws {TypeError} For a key or value holding `=` (keys only) or NUL.
 * @example
 * ```ts
 * import { encodeText, decodeText } from "./text_keys.ts";
 * const bytes = encodeText([["HeaderDigest", "None"], ["MaxConnections", "1"]]);
 * if (decodeText(bytes).get("MaxConnections") !== "1" || bytes.at(-1) !== 0) throw new Error("unexpected");
 * ```
 */
export function encodeText(pairs: TextPairs): Uint8Array {
  let text = "";
  for (const [key, value] of pairs) {
    if (key.length === 0 || key.includes("=") || key.includes("\0") || value.includes("\0")) {
      throw new TypeError(`Invalid iSCSI text key ${JSON.stringify(key)}=${JSON.stringify(value)}`);
    }
    text += `${key}=${value}\0`;
  }
  return encoder.encode(text);
}

/**
 * Decodes a data segment into pairs, in order (repeated keys kept).
 *
 * @param bytes The data segment.
 * @returns The pairs.
 * @example
 * ```ts
 * import { decodeTextPairs } from "./text_keys.ts";
 * const pairs = decodeTextPairs(new TextEncoder().encode("TargetName=iqn.a\0TargetAddress=1.2.3.4:3260,1\0"));
 * if (pairs.length !== 2 || pairs[1]![1] !== "1.2.3.4:3260,1") throw new Error("unexpected");
 * ```
 */
export function decodeTextPairs(bytes: Uint8Array): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const item of decoder.decode(bytes).split("\0")) {
    if (item.length === 0) continue;
    const eq = item.indexOf("=");
    out.push(eq < 0 ? [item, ""] : [item.slice(0, eq), item.slice(eq + 1)]);
  }
  return out;
}

/**
 * Decodes a data segment into a map (the last value of a repeated key wins).
 *
 * @param bytes The data segment.
 * @returns The keys and their values.
 * @example
 * ```ts
 * import { decodeText } from "./text_keys.ts";
 * if (decodeText(new TextEncoder().encode("AuthMethod=CHAP\0")).get("AuthMethod") !== "CHAP") throw new Error("unexpected");
 * ```
 */
export function decodeText(bytes: Uint8Array): Map<string, string> {
  return new Map(decodeTextPairs(bytes));
}
