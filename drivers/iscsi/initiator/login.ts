/**
 * Logging in (RFC 7143 §6, §13): the security stage (no authentication, or CHAP with MD5), then the
 * operational stage that settles burst and segment sizes, then the session. Discovery sessions (no
 * target name) log in the same way with fewer keys.
 *
 * @module
 */
import { ConnectError } from "../../../core/errors.ts";
import { chapChallenge, chapResponse, CHAP_MD5, decodeChapBinary, verifyChapResponse } from "./chap.ts";
import { LoginChannel, type LoginReply, Stage } from "./login_channel.ts";
import { IscsiSession, type SessionTimeouts } from "./session.ts";
import { connectTcp, type IscsiTransport } from "./transport.ts";

/** CHAP credentials: the initiator proves itself to the target; with `mutual`, the target to us as well. */
export interface ChapCredentials {
  /** `CHAP_N`: the account name on the target. */
  readonly username: string;
  /** The shared secret. */
  readonly password: string;
  /** The target's outgoing account: the name it must give and the secret it must answer our challenge with. */
  readonly mutual?: { readonly username: string; readonly password: string };
}

/** What a login needs. */
export interface LoginOptions extends SessionTimeouts {
  /** Portal host. */
  readonly host: string;
  /** Portal port (default 3260). */
  readonly port?: number;
  /** Target IQN; absent for a discovery session. */
  readonly target?: string;
  /** Our IQN. */
  readonly initiatorName: string;
  /** CHAP credentials, when the target wants them. */
  readonly auth?: ChapCredentials;
  /** Bound on the TCP connect plus the whole login (default 10 s). */
  readonly loginTimeoutMs?: number;
  /** Aborts the connect and the login. */
  readonly signal?: AbortSignal;
  /** A transport to use instead of a TCP connection (tests). */
  readonly transport?: IscsiTransport;
}

/** What login settled; sizes in bytes. */
export interface NegotiatedParams {
  /** Largest data segment we may send (the target's MaxRecvDataSegmentLength). */
  readonly maxSendDataBytes: number;
  /** Largest data segment the target may send us (what we declared). */
  readonly maxRecvDataBytes: number;
  /** Largest unsolicited data (immediate plus unsolicited Data-Out) per write. */
  readonly firstBurstBytes: number;
  /** Largest solicited data per R2T sequence. */
  readonly maxBurstBytes: number;
  /** Whether write data may ride in the command PDU. */
  readonly immediateData: boolean;
  /** Whether the target must ask (R2T) before any Data-Out. */
  readonly initialR2T: boolean;
}

/** Our offers. 256 KiB segments keep the PDU count of a 1 MiB read at 4 without large reassembly. */
const OUR_RECV_DATA_BYTES = 262_144;
const OUR_MAX_BURST_BYTES = 16_776_192;
const OUR_FIRST_BURST_BYTES = 262_144;
/** Bound on empty steps a target may ask for in one stage (a misbehaving target must not loop us). */
const MAX_STEPS = 8;

/**
 * Connects and logs in.
 *
 * @param options Portal, target, our name, credentials and timeouts.
 * @returns The session, in full feature phase.
 * @throws {ConnectError} When the portal cannot be reached, the target does not exist or refuses us,
 *   CHAP fails (a wrong secret), or the login does not finish in time. The message says which.
 * @example Nothing listens on port 1: a `ConnectError`, at once
 * ```ts
 * import { login } from "./login.ts";
 * import { ConnectError } from "virtkit";
 * const error = await login({ host: "127.0.0.1", port: 1, target: "iqn.2026-01.com.example:t", initiatorName: "iqn.2026-01.com.example:me" }).then(() => undefined, (e) => e);
 * if (!(error instanceof ConnectError)) throw new Error("unexpected");
 * ```
 */
export async function login(options: LoginOptions): Promise<IscsiSession> {
  const port = options.port ?? 3260;
  const label = `${options.host}:${port}${options.target ? ` target ${options.target}` : " (discovery)"}`;
  const loginTimeoutMs = options.loginTimeoutMs ?? 10_000;
  const transport = options.transport ?? (await connectTcp({ host: options.host, port }, { timeoutMs: loginTimeoutMs, signal: options.signal }));
  const channel = new LoginChannel(transport, label, loginTimeoutMs);
  const onAbort = () => {
    try {
      channel.fail(new ConnectError(`iSCSI login to ${label} aborted`, { driver: "iscsi", cause: options.signal!.reason }));
    } catch {
      // fail() throws for its callers in the login's own flow; here the waiting exchange gets the error.
    }
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await security(channel, label, options);
    const params = await operational(channel, label, options.target === undefined);
    const seq = channel.sequence();
    return new IscsiSession(transport, { params, ...seq, label, handOver: (receiver) => channel.handOver(receiver) }, options);
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw error;
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
}

async function security(channel: LoginChannel, label: string, options: LoginOptions): Promise<void> {
  const keys: Array<[string, string]> = [
    ["InitiatorName", options.initiatorName],
    ["SessionType", options.target === undefined ? "Discovery" : "Normal"],
    ...(options.target === undefined ? [] : ([["TargetName", options.target]] as Array<[string, string]>)),
    ["AuthMethod", options.auth ? "CHAP,None" : "None"],
  ];
  let reply = check(await channel.exchange(Stage.security, Stage.operational, !options.auth, keys), channel, label, options);
  const method = value(reply, "AuthMethod");
  if (method === "CHAP") {
    if (!options.auth) return channel.fail(new ConnectError(`iSCSI login to ${label} failed: the target requires CHAP authentication; give "auth" in the pool definition`, { driver: "iscsi" }));
    reply = check(await channel.exchange(Stage.security, Stage.operational, false, [["CHAP_A", CHAP_MD5]]), channel, label, options);
    const identifier = Number(value(reply, "CHAP_I"));
    const challenge = value(reply, "CHAP_C");
    if (value(reply, "CHAP_A") !== CHAP_MD5 || !Number.isInteger(identifier) || challenge === undefined) {
      return channel.fail(new ConnectError(`iSCSI login to ${label} failed: the target offered no MD5 CHAP challenge`, { driver: "iscsi" }));
    }
    const theirs = decodeChapBinary(challenge);
    const response = chapResponse(identifier, options.auth.password, theirs);
    const answer: Array<[string, string]> = [["CHAP_N", options.auth.username], ["CHAP_R", response]];
    // Mutual CHAP: our challenge rides with our answer (RFC 7143 §12.1.3), and the target answers it next.
    const ours = options.auth.mutual ? chapChallenge() : undefined;
    if (ours) {
      // The same challenge both ways would let a peer replay our own answer as its proof.
      if (ours.challenge.length === theirs.length && ours.challenge.every((b, i) => b === theirs[i])) {
        return channel.fail(new ConnectError(`iSCSI login to ${label} failed: the target's CHAP challenge equals ours (a reflection); refused`, { driver: "iscsi" }));
      }
      answer.push(["CHAP_I", String(ours.identifier)], ["CHAP_C", ours.encoded]);
    }
    reply = check(await channel.exchange(Stage.security, Stage.operational, true, answer), channel, label, options);
    if (ours) verifyTarget(reply, channel, label, options.auth.mutual!, ours);
  } else if (method !== undefined && method !== "None") {
    return channel.fail(new ConnectError(`iSCSI login to ${label} failed: the target chose authentication "${method}", which is not offered`, { driver: "iscsi" }));
  }
  for (let step = 0; !(reply.transit && reply.nextStage === Stage.operational); step++) {
    if (step >= MAX_STEPS) return channel.fail(new ConnectError(`iSCSI login to ${label} failed: the security stage does not end`, { driver: "iscsi" }));
    reply = check(await channel.exchange(Stage.security, Stage.operational, true, []), channel, label, options);
  }
}

/** Checks the target's answer to our mutual CHAP challenge: its account name and its CHAP_R. */
function verifyTarget(reply: LoginReply, channel: LoginChannel, label: string, mutual: { username: string; password: string }, ours: { identifier: number; challenge: Uint8Array }): void {
  const name = value(reply, "CHAP_N");
  const response = value(reply, "CHAP_R");
  let why: string | undefined;
  if (response === undefined || name === undefined) why = "it did not answer our challenge (no outgoing account bound to the target?)";
  else if (name !== mutual.username) why = `it answered as "${name}", not as "${mutual.username}"`;
  else if (!verifyChapResponse(ours.identifier, mutual.password, ours.challenge, response)) why = `its answer does not match the secret of "${mutual.username}" in auth.mutual`;
  if (why !== undefined) channel.fail(new ConnectError(`iSCSI login to ${label} failed: the target did not prove itself (mutual CHAP): ${why}`, { driver: "iscsi" }));
}

async function operational(channel: LoginChannel, label: string, discovery: boolean): Promise<NegotiatedParams> {
  const keys: Array<[string, string]> = [
    ["HeaderDigest", "None"],
    ["DataDigest", "None"],
    ["MaxRecvDataSegmentLength", String(OUR_RECV_DATA_BYTES)],
    ["DefaultTime2Wait", "0"],
    ["DefaultTime2Retain", "0"],
    ["ErrorRecoveryLevel", "0"],
    ["IFMarker", "No"],
    ["OFMarker", "No"],
  ];
  if (!discovery) {
    keys.push(
      ["InitialR2T", "No"],
      ["ImmediateData", "Yes"],
      ["MaxBurstLength", String(OUR_MAX_BURST_BYTES)],
      ["FirstBurstLength", String(OUR_FIRST_BURST_BYTES)],
      ["MaxOutstandingR2T", "1"],
      ["MaxConnections", "1"],
      ["DataPDUInOrder", "Yes"],
      ["DataSequenceInOrder", "Yes"],
    );
  }
  const answers = new Map<string, string>();
  let reply = check(await channel.exchange(Stage.operational, Stage.fullFeature, true, keys), channel, label);
  for (let step = 0; ; step++) {
    for (const [k, v] of reply.keys) answers.set(k, v);
    if (reply.transit && reply.nextStage === Stage.fullFeature) break;
    if (step >= MAX_STEPS) return channel.fail(new ConnectError(`iSCSI login to ${label} failed: the operational stage does not end`, { driver: "iscsi" }));
    reply = check(await channel.exchange(Stage.operational, Stage.fullFeature, true, []), channel, label);
  }
  for (const digest of ["HeaderDigest", "DataDigest"]) {
    const got = answers.get(digest);
    if (got !== undefined && got !== "None") return channel.fail(new ConnectError(`iSCSI login to ${label} failed: the target insists on ${digest}=${got}`, { driver: "iscsi" }));
  }
  const number = (key: string, fallback: number) => {
    const n = Number(answers.get(key));
    return Number.isSafeInteger(n) && n > 0 ? n : fallback;
  };
  const yes = (key: string, fallback: boolean) => {
    const v = answers.get(key);
    return v === "Yes" ? true : v === "No" ? false : fallback;
  };
  const maxBurstBytes = Math.min(number("MaxBurstLength", 262_144), OUR_MAX_BURST_BYTES);
  return {
    maxSendDataBytes: number("MaxRecvDataSegmentLength", 8192),
    maxRecvDataBytes: OUR_RECV_DATA_BYTES,
    maxBurstBytes,
    firstBurstBytes: Math.min(number("FirstBurstLength", 65_536), OUR_FIRST_BURST_BYTES, maxBurstBytes),
    // RFC 7143 defaults when the target does not answer: InitialR2T=Yes, ImmediateData=Yes.
    immediateData: yes("ImmediateData", true),
    initialR2T: yes("InitialR2T", true),
  };
}

function value(reply: LoginReply, key: string): string | undefined {
  let found: string | undefined;
  for (const [k, v] of reply.keys) if (k === key) found = v;
  return found;
}

/** Turns a failed login status (RFC 7143 §11.13.5) into a `ConnectError` that says what to fix. */
function check(reply: LoginReply, channel: LoginChannel, label: string, options?: LoginOptions): LoginReply {
  if (reply.statusClass === 0) return reply;
  const code = (reply.statusClass << 8) | reply.statusDetail;
  const hex = `0x${code.toString(16).padStart(4, "0")}`;
  let why: string;
  if (code === 0x0201) {
    why = options?.auth
      ? `CHAP authentication failed for user "${options.auth.username}" (wrong user name or secret${options.auth.mutual ? ", or no outgoing account on the target for mutual CHAP" : ""})`
      : `the target requires authentication; give "auth" in the pool definition`;
  } else if (code === 0x0202) why = "this initiator is not allowed to log in to the target";
  else if (code === 0x0203) why = "the target does not exist at this portal";
  else if (code === 0x0204) why = "the target was removed";
  else if (reply.statusClass === 1) why = `the target moved (redirect to ${value(reply, "TargetAddress") ?? "an unnamed address"}), which is not followed`;
  else if (reply.statusClass === 3) why = "the target cannot serve the login now (target error)";
  else why = "the target refused the login";
  return channel.fail(new ConnectError(`iSCSI login to ${label} failed: ${why} (status ${hex})`, { driver: "iscsi" }));
}
