/**
 * The SCSI commands a LUN volume needs (SPC-4, SBC-3): REPORT LUNS, INQUIRY, READ CAPACITY(16),
 * READ(16), WRITE(16), SYNCHRONIZE CACHE(10), GET LBA STATUS, MODE SENSE(6), TEST UNIT READY; CDBs built
 * and answers parsed here, sense data turned into a {@linkcode ScsiError}.
 *
 * @module
 */
import { VirtError } from "../../../core/errors.ts";
import { decodeLun, u32 } from "./pdu.ts";
import type { IscsiSession, ScsiStatus } from "./session.ts";

/**
 * A SCSI command ended with an error status; `senseKey`/`asc`/`ascq` say why (SPC-4 §4.5).
 *
 * @example
 * ```ts
 * import { ScsiError } from "./scsi.ts";
 * const error = new ScsiError("SCSI WRITE(16) on LUN 2 failed: DATA PROTECT", { status: 2, senseKey: 7, asc: 0x27, ascq: 0 });
 * if (error.code !== "command-failed" || error.senseKey !== 7) throw new Error("unexpected");
 * ```
 */
export class ScsiError extends VirtError {
  /** SCSI status byte. */
  readonly status: number;
  /** Sense key (2 NOT READY, 3 MEDIUM ERROR, 5 ILLEGAL REQUEST, 6 UNIT ATTENTION, 7 DATA PROTECT...). */
  readonly senseKey: number;
  /** Additional sense code. */
  readonly asc: number;
  /** Its qualifier. */
  readonly ascq: number;

  /**
   * @param message What failed, naming the LUN.
   * @param details Status and sense.
   */
  constructor(message: string, details: { status: number; senseKey: number; asc: number; ascq: number }) {
    super("command-failed", message, { driver: "iscsi" });
    this.name = "ScsiError";
    this.status = details.status;
    this.senseKey = details.senseKey;
    this.asc = details.asc;
    this.ascq = details.ascq;
  }
}

const SENSE_KEYS = ["NO SENSE", "RECOVERED ERROR", "NOT READY", "MEDIUM ERROR", "HARDWARE ERROR", "ILLEGAL REQUEST", "UNIT ATTENTION", "DATA PROTECT", "BLANK CHECK", "VENDOR SPECIFIC", "COPY ABORTED", "ABORTED COMMAND", "", "VOLUME OVERFLOW", "MISCOMPARE", ""];

/**
 * Reads sense key, ASC and ASCQ from fixed (0x70, 0x71) or descriptor (0x72, 0x73) sense data.
 *
 * @param sense The sense bytes.
 * @returns The three codes (zeros when there is no sense data).
 * @example
 * ```ts
 * import { parseSense } from "./scsi.ts";
 * const fixed = new Uint8Array(18); fixed[0] = 0x70; fixed[2] = 0x05; fixed[12] = 0x24;
 * const s = parseSense(fixed);
 * if (s.senseKey !== 5 || s.asc !== 0x24 || s.ascq !== 0) throw new Error("unexpected");
 * ```
 */
export function parseSense(sense: Uint8Array): { senseKey: number; asc: number; ascq: number } {
  const code = (sense[0] ?? 0) & 0x7f;
  if (code === 0x72 || code === 0x73) return { senseKey: (sense[1] ?? 0) & 0x0f, asc: sense[2] ?? 0, ascq: sense[3] ?? 0 };
  return { senseKey: (sense[2] ?? 0) & 0x0f, asc: sense[12] ?? 0, ascq: sense[13] ?? 0 };
}

/** Standard INQUIRY data, the parts a pool uses. */
export interface InquiryData {
  /** Peripheral device type (0 = direct access block device, 0x0c = storage array controller). */
  readonly deviceType: number;
  /** Peripheral qualifier (0 = a device is connected to this LUN). */
  readonly qualifier: number;
  /** T10 vendor identification, trimmed. */
  readonly vendor: string;
  /** Product identification, trimmed. */
  readonly product: string;
}

/** READ CAPACITY(16) data. */
export interface Capacity {
  /** Number of logical blocks. */
  readonly blocks: number;
  /** Logical block size in bytes. */
  readonly blockBytes: number;
  /** Logical block provisioning management enabled (thin: GET LBA STATUS answers). */
  readonly lbpme: boolean;
  /** Unmapped blocks read as zeros. */
  readonly lbprz: boolean;
}

/** A provisioning run from GET LBA STATUS. */
export interface LbaStatus {
  /** First block. */
  readonly lba: number;
  /** Number of blocks. */
  readonly blocks: number;
  /** 0 mapped, 1 deallocated, 2 anchored. */
  readonly provisioning: number;
}

const latin1 = new TextDecoder("latin1");
/** How often a command is repeated after UNIT ATTENTION (a fresh login reports a reset once per LUN). */
const UNIT_ATTENTION_RETRIES = 3;

/**
 * The commands of one LUN over a session. A CHECK CONDITION becomes a {@linkcode ScsiError}; UNIT
 * ATTENTION (a target reports one after a reset or a LUN change) is answered by repeating the command.
 *
 * @example READ CAPACITY(16) over a stand-in session that answers it
 * ```ts
 * import { ScsiLun } from "./scsi.ts";
 * const session = {
 *   label: "demo",
 *   execute: async (request: { cdb: Uint8Array; read?: Uint8Array }) => {
 *     request.read!.set([0, 0, 0, 0, 0, 0, 0x0f, 0xff, 0, 0, 2, 0]); // last LBA 4095, 512-byte blocks
 *     return { status: 0, response: 0, sense: new Uint8Array(0), residualBytes: 0, receivedBytes: 32 };
 *   },
 * } as unknown as import("./session.ts").IscsiSession;
 * const capacity = await new ScsiLun(session, 1).readCapacity();
 * if (capacity.blocks !== 4096 || capacity.blockBytes !== 512) throw new Error("unexpected");
 * ```
 */
export class ScsiLun {
  readonly #session: IscsiSession;
  /** The LUN number. */
  readonly lun: number;

  /**
   * @param session A logged-in session.
   * @param lun The LUN.
   */
  constructor(session: IscsiSession, lun: number) {
    this.#session = session;
    this.lun = lun;
  }

  /** Standard INQUIRY. */
  async inquiry(signal?: AbortSignal): Promise<InquiryData> {
    const data = new Uint8Array(96);
    const got = await this.#run("INQUIRY", [0x12, 0, 0, 0, 96, 0], { read: data, signal });
    const d = data.subarray(0, got);
    return { qualifier: d[0]! >>> 5, deviceType: d[0]! & 0x1f, vendor: latin1.decode(d.subarray(8, 16)).trim(), product: latin1.decode(d.subarray(16, 32)).trim() };
  }

  /** READ CAPACITY(16). */
  async readCapacity(signal?: AbortSignal): Promise<Capacity> {
    const data = new Uint8Array(32);
    const cdb = new Uint8Array(16);
    cdb[0] = 0x9e;
    cdb[1] = 0x10;
    cdb[13] = 32;
    await this.#run("READ CAPACITY(16)", cdb, { read: data, signal });
    const lastLba = u32(data, 0) * 2 ** 32 + u32(data, 4);
    return { blocks: lastLba + 1, blockBytes: u32(data, 8), lbpme: (data[14]! & 0x80) !== 0, lbprz: (data[14]! & 0x40) !== 0 };
  }

  /** Whether the LUN is write-protected (MODE SENSE(6), the WP bit of the header). */
  async writeProtected(signal?: AbortSignal): Promise<boolean> {
    const data = new Uint8Array(192);
    await this.#run("MODE SENSE(6)", [0x1a, 0x08, 0x3f, 0, 192, 0], { read: data, signal });
    return (data[2]! & 0x80) !== 0;
  }

  /**
   * READ(16) of `target.byteLength / blockBytes` blocks at `lba` into `target`.
   *
   * @returns Bytes read.
   */
  async read(lba: number, blocks: number, target: Uint8Array, signal?: AbortSignal): Promise<number> {
    return await this.#run("READ(16)", rw16(0x88, lba, blocks), { read: target, signal });
  }

  /** WRITE(16) of `data` at `lba`. */
  async write(lba: number, blocks: number, data: Uint8Array, signal?: AbortSignal): Promise<void> {
    await this.#run("WRITE(16)", rw16(0x8a, lba, blocks), { write: data, signal });
  }

  /** SYNCHRONIZE CACHE(10) of the whole LUN. */
  async synchronizeCache(signal?: AbortSignal): Promise<void> {
    await this.#run("SYNCHRONIZE CACHE(10)", [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], { signal });
  }

  /** GET LBA STATUS from `lba`: the provisioning runs the target reports in one answer. */
  async lbaStatus(lba: number, signal?: AbortSignal): Promise<LbaStatus[]> {
    const data = new Uint8Array(8 + 16 * 64);
    const cdb = new Uint8Array(16);
    cdb[0] = 0x9e;
    cdb[1] = 0x12;
    putU64(cdb, 2, lba);
    cdb.set([0, 0, data.byteLength >>> 8, data.byteLength & 0xff], 10);
    const got = await this.#run("GET LBA STATUS", cdb, { read: data, signal });
    const length = Math.min(got, 4 + u32(data, 0));
    const out: LbaStatus[] = [];
    for (let at = 8; at + 16 <= length; at += 16) {
      out.push({ lba: u32(data, at) * 2 ** 32 + u32(data, at + 4), blocks: u32(data, at + 8), provisioning: data[at + 12]! & 0x0f });
    }
    return out;
  }

  /** REPORT LUNS (sent to this LUN, usually 0): every LUN the target offers us. */
  async reportLuns(signal?: AbortSignal): Promise<number[]> {
    const data = new Uint8Array(8 + 8 * 512);
    const cdb = new Uint8Array(12);
    cdb[0] = 0xa0;
    cdb.set([data.byteLength >>> 24, (data.byteLength >>> 16) & 0xff, (data.byteLength >>> 8) & 0xff, data.byteLength & 0xff], 6);
    const got = await this.#run("REPORT LUNS", cdb, { read: data, signal });
    const length = Math.min(got, 8 + u32(data, 0));
    const luns: number[] = [];
    for (let at = 8; at + 8 <= length; at += 8) {
      const lun = decodeLun(data.subarray(at, at + 8));
      if (lun !== undefined) luns.push(lun);
    }
    return luns.sort((a, b) => a - b);
  }

  /** Runs a command, repeating it after UNIT ATTENTION; resolves with the bytes transferred in. */
  async #run(name: string, cdb: ArrayLike<number>, io: { read?: Uint8Array; write?: Uint8Array; signal?: AbortSignal }): Promise<number> {
    const bytes = Uint8Array.from(cdb);
    for (let attempt = 0; ; attempt++) {
      const result: ScsiStatus = await this.#session.execute({ lun: this.lun, cdb: bytes, ...io });
      if (result.status === 0 && result.response === 0) return Math.max(0, (io.read?.byteLength ?? 0) - Math.max(0, result.residualBytes));
      const sense = parseSense(result.sense);
      if (result.status === 2 && sense.senseKey === 6 && attempt < UNIT_ATTENTION_RETRIES) continue;
      const key = SENSE_KEYS[sense.senseKey] ?? String(sense.senseKey);
      const hex = (n: number) => `0x${n.toString(16).padStart(2, "0")}`;
      const detail = result.status === 2 ? `${key}, ASC/ASCQ ${hex(sense.asc)}/${hex(sense.ascq)}` : `status ${hex(result.status)}, response ${hex(result.response)}`;
      throw new ScsiError(`SCSI ${name} on LUN ${this.lun} of ${this.#session.label} failed: ${detail}`, { status: result.status, ...sense });
    }
  }
}

function rw16(opcode: number, lba: number, blocks: number): Uint8Array {
  const cdb = new Uint8Array(16);
  cdb[0] = opcode;
  putU64(cdb, 2, lba);
  cdb.set([blocks >>> 24, (blocks >>> 16) & 0xff, (blocks >>> 8) & 0xff, blocks & 0xff], 10);
  return cdb;
}

function putU64(bytes: Uint8Array, at: number, value: number): void {
  const high = Math.floor(value / 2 ** 32);
  const low = value >>> 0;
  bytes.set([high >>> 24, (high >>> 16) & 0xff, (high >>> 8) & 0xff, high & 0xff, low >>> 24, (low >>> 16) & 0xff, (low >>> 8) & 0xff, low & 0xff], at);
}
