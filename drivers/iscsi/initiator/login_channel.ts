/**
 * The login phase's exchange of Login Request and Login Response PDUs (RFC 7143 §11.12, §11.13) on a
 * fresh transport: one request at a time, every wait bounded by the login deadline, the connection's
 * end turned into a `ConnectError`. At the end it hands the transport's byte stream over to the
 * session.
 *
 * @module
 */
import { ConnectError } from "../../../core/errors.ts";
import { FINAL, type Header, IMMEDIATE, Op, encodeHeader, paddingOf, u32 } from "./pdu.ts";
import { PduReader } from "./pdu_reader.ts";
import { decodeTextPairs, encodeText, type TextPairs } from "./text_keys.ts";
import type { IscsiTransport } from "./transport.ts";

/** Login stages (CSG/NSG). */
export const Stage = Object.freeze({ security: 0, operational: 1, fullFeature: 3 });

/** One login response, decoded. */
export interface LoginReply {
  /** The target agreed to move to `nextStage`. */
  readonly transit: boolean;
  /** Its next stage. */
  readonly nextStage: number;
  /** Status class (0 success, 1 redirect, 2 initiator error, 3 target error) and detail. */
  readonly statusClass: number;
  /** Status detail. */
  readonly statusDetail: number;
  /** The keys, in order (continuations joined). */
  readonly keys: Array<[string, string]>;
}

/** Sequence numbers at the end of login, where the session takes over. */
export interface LoginSequence {
  /** The CmdSN of the first command. */
  readonly cmdSN: number;
  /** The next StatSN expected. */
  readonly expStatSN: number;
  /** The last CmdSN the target accepts. */
  readonly maxCmdSN: number;
}

/** @internal Drives the request/response pairs of one login. */
export class LoginChannel {
  readonly #transport: IscsiTransport;
  readonly #label: string;
  readonly #deadlineMs: number;
  readonly #isid: Uint8Array;
  readonly #reader: PduReader;
  #tsih = 0;
  #cmdSN = 1;
  #expStatSN = 0;
  #maxCmdSN = 1;
  #waiter: { resolve: (pdu: { header: Header; data: Uint8Array }) => void; reject: (error: unknown) => void } | undefined;
  #ended: ConnectError | undefined;
  #forward: ((chunk: Uint8Array) => void) | undefined;

  constructor(transport: IscsiTransport, label: string, timeoutMs: number) {
    this.#transport = transport;
    this.#label = label;
    this.#deadlineMs = Date.now() + timeoutMs;
    // ISID type "random" (0x80), as libiscsi makes it: the target tells sessions apart by it.
    this.#isid = crypto.getRandomValues(new Uint8Array(6));
    this.#isid[0] = 0x80;
    this.#reader = new PduReader({
      place: () => undefined,
      pdu: (header, data) => {
        const waiter = this.#waiter;
        this.#waiter = undefined;
        if (waiter) waiter.resolve({ header, data: data ?? new Uint8Array(0) });
        else this.#end(new ConnectError(`iSCSI login to ${label} failed: the target sent a PDU nobody asked for`, { driver: "iscsi" }));
      },
    });
    transport.onData((chunk) => {
      if (this.#forward) return this.#forward(chunk);
      try {
        this.#reader.push(chunk);
      } catch (error) {
        this.#end(new ConnectError(`iSCSI login to ${label} failed: malformed PDU`, { driver: "iscsi", cause: error }));
      }
    });
    transport.onClose((error) => this.#end(new ConnectError(`iSCSI login to ${label} failed: the target closed the connection`, { driver: "iscsi", ...(error ? { cause: error } : {}) })));
  }

  /**
   * Sends one login request and waits for its (complete) response.
   *
   * @param current The current stage.
   * @param next The stage asked for.
   * @param transit Whether to ask for the move.
   * @param keys The keys.
   * @returns The response.
   */
  async exchange(current: number, next: number, transit: boolean, keys: TextPairs): Promise<LoginReply> {
    let reply = await this.#roundTrip(current, next, transit, encodeText(keys));
    const all = [...reply.keys];
    // C bit: the target has more keys for this step; an empty request asks for them (§11.13.2).
    while (reply.more) {
      reply = await this.#roundTrip(current, next, false, new Uint8Array(0));
      all.push(...reply.keys);
    }
    return { ...reply, keys: all };
  }

  /** The sequence numbers to start the session with. */
  sequence(): LoginSequence {
    return { cmdSN: this.#cmdSN, expStatSN: this.#expStatSN, maxCmdSN: this.#maxCmdSN };
  }

  /**
   * Hands the byte stream over (after the final login response).
   *
   * @param receiver Gets every further chunk.
   */
  handOver(receiver: (chunk: Uint8Array) => void): void {
    this.#forward = receiver;
  }

  /** Fails the login and closes the transport. */
  fail(error: ConnectError): never {
    this.#end(error);
    throw error;
  }

  async #roundTrip(current: number, next: number, transit: boolean, data: Uint8Array): Promise<LoginReply & { more: boolean }> {
    if (this.#ended) throw this.#ended;
    const lunOrIsid = new Uint8Array(8);
    lunOrIsid.set(this.#isid);
    lunOrIsid[6] = this.#tsih >>> 8;
    lunOrIsid[7] = this.#tsih & 0xff;
    const flags = (transit ? FINAL : 0) | (current << 2) | (transit ? next : 0);
    const response = new Promise<{ header: Header; data: Uint8Array }>((resolve, reject) => (this.#waiter = { resolve, reject }));
    const header = encodeHeader({ opcode: Op.loginRequest | IMMEDIATE, flags, bytes2to3: [0, 0], lunOrIsid, itt: 0, words: [0, this.#cmdSN, this.#expStatSN], data });
    this.#transport.write(header);
    if (data.byteLength > 0) this.#transport.write(data);
    if (paddingOf(data.byteLength) > 0) this.#transport.write(new Uint8Array(paddingOf(data.byteLength)));
    const waitMs = Math.max(0, this.#deadlineMs - Date.now());
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ConnectError(`iSCSI login to ${this.#label} failed: no answer within the login timeout`, { driver: "iscsi" })), waitMs);
    });
    let pdu: { header: Header; data: Uint8Array };
    try {
      pdu = await Promise.race([response, timeout]);
    } catch (error) {
      this.#end(error as ConnectError);
      throw error;
    } finally {
      clearTimeout(timer);
    }
    const b = pdu.header.bytes;
    if (pdu.header.opcode !== Op.loginResponse) {
      this.fail(new ConnectError(`iSCSI login to ${this.#label} failed: the target answered with opcode 0x${pdu.header.opcode.toString(16)}`, { driver: "iscsi" }));
    }
    this.#tsih = (b[14]! << 8) | b[15]!;
    this.#expStatSN = (u32(b, 24) + 1) >>> 0;
    this.#cmdSN = u32(b, 28);
    this.#maxCmdSN = u32(b, 32);
    return {
      transit: (pdu.header.flags & FINAL) !== 0,
      more: (pdu.header.flags & 0x40) !== 0,
      nextStage: pdu.header.flags & 3,
      statusClass: b[36]!,
      statusDetail: b[37]!,
      keys: decodeTextPairs(pdu.data),
    };
  }

  #end(error: ConnectError): void {
    if (this.#forward) return;
    this.#ended ??= error;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(this.#ended);
    this.#transport.destroy();
  }
}
