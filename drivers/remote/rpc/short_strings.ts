/**
 * Decode caches for the strings every call carries again and again: short ASCII names (a domain's
 * name, a disk target, a URI) and UUIDs (every domain reference). Building a JS string from bytes
 * allocates it (a UUID's 20 pieces allocate 20), and at thousands of calls a second those allocations
 * are what keeps the young generation collecting; a hit here returns the string decoded last time from
 * the same bytes, and allocates nothing. Strings are immutable, so handing out the same one is
 * indistinguishable from a fresh copy.
 *
 * Each cache is direct-mapped (a hash of the bytes picks one slot; a miss overwrites it), so its memory
 * is fixed: 1024 slots of at most {@linkcode SHORT_STRING_MAX_BYTES} characters, 256 UUIDs.
 *
 * @module
 */

/** Longest string the short-string cache holds; longer ones are decoded each time. */
export const SHORT_STRING_MAX_BYTES = 32;

const SLOTS = 1024;
const strings: Array<string | undefined> = new Array(SLOTS).fill(undefined);

/**
 * The string of `length` ASCII bytes (each < 0x80) at `offset`, from the cache when the same bytes
 * were decoded before. The caller checks that the bytes are ASCII and `length` is at most
 * {@linkcode SHORT_STRING_MAX_BYTES}.
 *
 * @param bytes The buffer.
 * @param offset Where the string starts.
 * @param length Its length in bytes (= characters).
 * @returns The string.
 * @example
 * ```ts
 * import { shortAsciiString } from "./short_strings.ts";
 * const bytes = new TextEncoder().encode("xxtestxx");
 * const a = shortAsciiString(bytes, 2, 4);
 * const b = shortAsciiString(bytes.slice(), 2, 4);
 * if (a !== "test" || b !== "test" || shortAsciiString(bytes, 0, 3) !== "xxt") throw new Error("unexpected");
 * ```
 */
export function shortAsciiString(bytes: Uint8Array, offset: number, length: number): string {
  // FNV-1a over the bytes and the length.
  let hash = 0x811c9dc5 ^ length;
  for (let i = 0; i < length; i++) hash = Math.imul(hash ^ bytes[offset + i]!, 0x01000193);
  const slot = (hash ^ (hash >>> 15)) & (SLOTS - 1);
  const cached = strings[slot];
  if (cached !== undefined && cached.length === length) {
    let same = true;
    for (let i = 0; i < length; i++) {
      if (cached.charCodeAt(i) !== bytes[offset + i]) {
        same = false;
        break;
      }
    }
    if (same) return cached;
  }
  let text = "";
  for (let i = 0; i < length; i++) text += String.fromCharCode(bytes[offset + i]!);
  strings[slot] = text;
  return text;
}

const UUID_SLOTS = 256;
const uuidBytes = new Uint8Array(UUID_SLOTS * 16);
const uuidTexts: Array<string | undefined> = new Array(UUID_SLOTS).fill(undefined);
/** Two hex digits per byte value. */
const HEX_BYTE = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/**
 * The 8-4-4-4-12 text of the 16 UUID bytes at `offset`, lower-case, from the cache when the same bytes
 * were decoded before.
 *
 * @param bytes The buffer.
 * @param offset Where the 16 bytes start.
 * @returns The UUID text.
 * @example
 * ```ts
 * import { uuidText } from "./short_strings.ts";
 * const bytes = Uint8Array.from({ length: 17 }, (_, i) => i * 15);
 * const text = uuidText(bytes, 1);
 * if (text !== "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0" || uuidText(bytes.slice(), 1) !== text) throw new Error(text);
 * ```
 */
export function uuidText(bytes: Uint8Array, offset: number): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < 16; i++) hash = Math.imul(hash ^ bytes[offset + i]!, 0x01000193);
  const slot = (hash ^ (hash >>> 13)) & (UUID_SLOTS - 1);
  const at = slot * 16;
  const cached = uuidTexts[slot];
  if (cached !== undefined) {
    let same = true;
    for (let i = 0; i < 16; i++) {
      if (uuidBytes[at + i] !== bytes[offset + i]) {
        same = false;
        break;
      }
    }
    if (same) return cached;
  }
  let text = "";
  for (let i = 0; i < 16; i++) {
    text += HEX_BYTE[bytes[offset + i]!]!;
    if (i === 3 || i === 5 || i === 7 || i === 9) text += "-";
  }
  uuidBytes.set(bytes.subarray(offset, offset + 16), at);
  uuidTexts[slot] = text;
  return text;
}
