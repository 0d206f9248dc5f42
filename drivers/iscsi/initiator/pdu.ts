/**
 * iSCSI PDUs (RFC 7143 §11): the 48-byte Basic Header Segment of every PDU the initiator sends or reads,
 * written and read field by field. No AHS is ever sent and digests are negotiated off (`None`), so a PDU
 * on the wire is the BHS, the data segment, and zero padding to a multiple of 4 bytes.
 *
 * @module
 */

/** Length of the Basic Header Segment. */
export const BHS_BYTES = 48;
/** The reserved tag value: "no task" for ITT and TTT. */
export const NO_TAG = 0xffffffff;

/** Opcodes (byte 0, low 6 bits): initiator to target. */
export const Op = Object.freeze({
  nopOut: 0x00,
  scsiCommand: 0x01,
  loginRequest: 0x03,
  textRequest: 0x04,
  dataOut: 0x05,
  logoutRequest: 0x06,
  // Target to initiator.
  nopIn: 0x20,
  scsiResponse: 0x21,
  loginResponse: 0x23,
  textResponse: 0x24,
  dataIn: 0x25,
  logoutResponse: 0x26,
  r2t: 0x31,
  asyncMessage: 0x32,
  reject: 0x3f,
});

/** The immediate-delivery bit of byte 0. */
export const IMMEDIATE = 0x40;
/** The final bit of byte 1. */
export const FINAL = 0x80;

/**
 * A received BHS, with the fields every target PDU has at the same place decoded. Opcode-specific
 * fields are read with {@linkcode u32} from `bytes`.
 */
export interface Header {
  /** The raw 48 bytes (a copy; safe to keep). */
  readonly bytes: Uint8Array;
  /** Opcode (byte 0, low 6 bits). */
  readonly opcode: number;
  /** Byte 1 (flags). */
  readonly flags: number;
  /** Length of the AHS in bytes. */
  readonly ahsBytes: number;
  /** Length of the data segment in bytes, without padding. */
  readonly dataBytes: number;
  /** Initiator task tag (bytes 16-19). */
  readonly itt: number;
}

/**
 * Reads a big-endian 32-bit field.
 *
 * @param bytes The buffer.
 * @param at Its offset.
 * @returns The unsigned value.
 * @example
 * ```ts
 * import { u32 } from "./pdu.ts";
 * if (u32(new Uint8Array([0, 0, 1, 2]), 0) !== 258) throw new Error("unexpected");
 * ```
 */
export function u32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) >>> 0) + ((bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!);
}

/**
 * Writes a big-endian 32-bit field.
 *
 * @param bytes The buffer.
 * @param at Its offset.
 * @param value An unsigned 32-bit value (wraps modulo 2^32, as sequence numbers do).
 * @example
 * ```ts
 * import { putU32, u32 } from "./pdu.ts";
 * const b = new Uint8Array(4);
 * putU32(b, 0, 2 ** 32 + 5);
 * if (u32(b, 0) !== 5) throw new Error("unexpected");
 * ```
 */
export function putU32(bytes: Uint8Array, at: number, value: number): void {
  const v = value >>> 0;
  bytes[at] = v >>> 24;
  bytes[at + 1] = (v >>> 16) & 0xff;
  bytes[at + 2] = (v >>> 8) & 0xff;
  bytes[at + 3] = v & 0xff;
}

/**
 * Decodes the common fields of a BHS.
 *
 * @param bytes 48 bytes (kept by reference: pass a copy).
 * @returns The header.
 * @example
 * ```ts
 * import { decodeHeader, BHS_BYTES } from "./pdu.ts";
 * const bhs = new Uint8Array(BHS_BYTES);
 * bhs[0] = 0x25; bhs[5] = 0; bhs[6] = 2; bhs[7] = 0; bhs[19] = 7;
 * const h = decodeHeader(bhs);
 * if (h.opcode !== 0x25 || h.dataBytes !== 512 || h.itt !== 7) throw new Error("unexpected");
 * ```
 */
export function decodeHeader(bytes: Uint8Array): Header {
  return {
    bytes,
    opcode: bytes[0]! & 0x3f,
    flags: bytes[1]!,
    ahsBytes: bytes[4]! * 4,
    dataBytes: (bytes[5]! << 16) | (bytes[6]! << 8) | bytes[7]!,
    itt: u32(bytes, 16),
  };
}

/** Fields of a PDU to send. Unset fields are zero. */
export interface OutgoingPdu {
  /** Opcode, with `IMMEDIATE` or'ed in when wanted. */
  readonly opcode: number;
  /** Byte 1. */
  readonly flags: number;
  /** Bytes 2 and 3 (opcode-specific). */
  readonly bytes2to3?: readonly [number, number];
  /** Bytes 8-15: the LUN field, or ISID + TSIH for login. */
  readonly lunOrIsid?: Uint8Array;
  /** Initiator task tag. */
  readonly itt: number;
  /** 32-bit words at bytes 20, 24, 28, 32, 36, 40, 44 (`undefined` leaves zero). */
  readonly words?: ReadonlyArray<number | undefined>;
  /** Bytes 32-47 of a SCSI command: the CDB. */
  readonly cdb?: Uint8Array;
  /** The data segment. */
  readonly data?: Uint8Array;
}

/**
 * Encodes the BHS of a PDU (the data segment is sent after it, then its padding).
 *
 * @param pdu The fields.
 * @returns 48 bytes.
 * @example
 * ```ts
 * import { encodeHeader, decodeHeader, Op, FINAL } from "./pdu.ts";
 * const bhs = encodeHeader({ opcode: Op.textRequest, flags: FINAL, itt: 9, words: [0xffffffff, 1, 2], data: new Uint8Array(5) });
 * const h = decodeHeader(bhs);
 * if (h.opcode !== Op.textRequest || h.dataBytes !== 5 || h.itt !== 9) throw new Error("unexpected");
 * ```
 */
export function encodeHeader(pdu: OutgoingPdu): Uint8Array {
  const bhs = new Uint8Array(BHS_BYTES);
  bhs[0] = pdu.opcode;
  bhs[1] = pdu.flags;
  if (pdu.bytes2to3) [bhs[2], bhs[3]] = pdu.bytes2to3;
  const dataBytes = pdu.data?.byteLength ?? 0;
  if (dataBytes >= 1 << 24) throw new RangeError(`Invalid data segment of ${dataBytes} bytes: at most 16 MiB - 1`);
  bhs[5] = dataBytes >>> 16;
  bhs[6] = (dataBytes >>> 8) & 0xff;
  bhs[7] = dataBytes & 0xff;
  if (pdu.lunOrIsid) bhs.set(pdu.lunOrIsid.subarray(0, 8), 8);
  putU32(bhs, 16, pdu.itt);
  pdu.words?.forEach((word, i) => {
    if (word !== undefined) putU32(bhs, 20 + 4 * i, word);
  });
  if (pdu.cdb) bhs.set(pdu.cdb, 32);
  return bhs;
}

/**
 * Bytes of padding after a data segment.
 *
 * @param dataBytes Its length.
 * @returns 0 to 3.
 * @example
 * ```ts
 * import { paddingOf } from "./pdu.ts";
 * if (paddingOf(5) !== 3 || paddingOf(8) !== 0) throw new Error("unexpected");
 * ```
 */
export function paddingOf(dataBytes: number): number {
  return (4 - (dataBytes & 3)) & 3;
}

/**
 * Encodes a LUN in the 8-byte SAM format (SAM-5 §4.7): peripheral addressing below 256, flat space
 * addressing up to 16383, as libiscsi does.
 *
 * @param lun The LUN number.
 * @returns 8 bytes.
 * @throws {RangeError} Outside 0..16383.
 * @example
 * ```ts
 * import { encodeLun, decodeLun } from "./pdu.ts";
 * if (decodeLun(encodeLun(300)) !== 300 || encodeLun(1)[1] !== 1) throw new Error("unexpected");
 * ```
 */
export function encodeLun(lun: number): Uint8Array {
  if (!Number.isInteger(lun) || lun < 0 || lun > 0x3fff) throw new RangeError(`Invalid LUN ${lun}: expected 0 to 16383`);
  const out = new Uint8Array(8);
  if (lun < 256) out[1] = lun;
  else {
    out[0] = 0x40 | (lun >>> 8);
    out[1] = lun & 0xff;
  }
  return out;
}

/**
 * Decodes the first level of an 8-byte SAM LUN (peripheral or flat space addressing).
 *
 * @param bytes 8 bytes (as REPORT LUNS lists them).
 * @returns The LUN number, or `undefined` for addressing methods a target of one level does not use.
 * @example
 * ```ts
 * import { decodeLun } from "./pdu.ts";
 * if (decodeLun(new Uint8Array([0, 3, 0, 0, 0, 0, 0, 0])) !== 3) throw new Error("unexpected");
 * ```
 */
export function decodeLun(bytes: Uint8Array): number | undefined {
  const method = bytes[0]! >>> 6;
  if (method === 0) return bytes[1]!;
  if (method === 1) return ((bytes[0]! & 0x3f) << 8) | bytes[1]!;
  return undefined;
}

/**
 * Whether sequence number `a` is after `b` in serial number arithmetic (RFC 1982, 32 bits), as
 * CmdSN and StatSN compare.
 *
 * @param a A sequence number.
 * @param b Another.
 * @returns `true` when `a > b`.
 * @example
 * ```ts
 * import { snGreater } from "./pdu.ts";
 * if (!snGreater(1, 0xffffffff) || snGreater(5, 5)) throw new Error("unexpected");
 * ```
 */
export function snGreater(a: number, b: number): boolean {
  const d = (a - b) >>> 0;
  return d !== 0 && d < 0x80000000;
}
