/**
 * What the session keeps per task, what a SCSI command asks for, and how its completion reads.
 *
 * @module
 */
import { type Header, u32 } from "./pdu.ts";

/** One SCSI command as the session runs it. */
export interface ScsiRequest {
  /** The LUN. */
  readonly lun: number;
  /** The CDB (6 to 16 bytes). */
  readonly cdb: Uint8Array;
  /** Where read data goes; its length is the expected transfer length. */
  readonly read?: Uint8Array;
  /** The data to write; its length is the expected transfer length. */
  readonly write?: Uint8Array;
  /** Stops waiting (the command itself cannot be taken back). */
  readonly signal?: AbortSignal;
}

/** How a SCSI command ended. */
export interface ScsiStatus {
  /** SCSI status byte: 0 GOOD, 2 CHECK CONDITION, 8 BUSY, 0x18 RESERVATION CONFLICT, 0x28 TASK SET FULL. */
  readonly status: number;
  /** iSCSI response code: 0 when the target completed the command. */
  readonly response: number;
  /** Sense data on CHECK CONDITION (empty otherwise). */
  readonly sense: Uint8Array;
  /** Bytes the target moved fewer (underflow, positive) or more (overflow, negative) than expected. */
  readonly residualBytes: number;
  /** Data-In bytes received. */
  readonly receivedBytes: number;
}

/** @internal The session's record of one task. */
export interface Task {
  readonly itt: number;
  readonly kind: "scsi" | "text" | "nop" | "logout";
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  readonly lun: number;
  readBuffer: Uint8Array | undefined;
  write: Uint8Array | undefined;
  received: number;
  readonly textData: Uint8Array[];
  timer?: ReturnType<typeof setTimeout>;
  unlisten?: () => void;
  /** The caller stopped waiting; the tag stays reserved until the target answers. */
  abandoned?: boolean;
}

/**
 * Reads the status of a SCSI Response PDU, or of a Data-In PDU with the S bit.
 *
 * @param header Its header.
 * @param data Its data segment (SCSI Response: 2-byte sense length, then sense data).
 * @param receivedBytes Data-In bytes received for the task.
 * @returns The status.
 * @example
 * ```ts
 * import { scsiStatusOf } from "./task.ts";
 * import { decodeHeader, BHS_BYTES } from "./pdu.ts";
 * const bhs = new Uint8Array(BHS_BYTES);
 * bhs[0] = 0x21; bhs[1] = 0x82; bhs[3] = 2; bhs[47] = 16;
 * const sense = new Uint8Array([0, 3, 0x70, 0, 5]);
 * const status = scsiStatusOf(decodeHeader(bhs), sense, 0);
 * if (status.status !== 2 || status.residualBytes !== 16 || status.sense.length !== 3) throw new Error("unexpected");
 * ```
 */
export function scsiStatusOf(header: Header, data: Uint8Array | undefined, receivedBytes: number): ScsiStatus {
  const b = header.bytes;
  const residual = u32(b, 44);
  const flags = header.flags;
  const residualBytes = (flags & 0x02) !== 0 ? residual : (flags & 0x04) !== 0 ? -residual : 0;
  let sense = new Uint8Array(0);
  if (header.opcode === 0x21 && data && data.byteLength >= 2) {
    const senseBytes = (data[0]! << 8) | data[1]!;
    sense = data.slice(2, 2 + senseBytes);
  }
  return { status: b[3]!, response: header.opcode === 0x21 ? b[2]! : 0, sense, residualBytes, receivedBytes };
}
