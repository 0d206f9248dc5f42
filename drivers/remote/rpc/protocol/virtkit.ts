/**
 * virtkit's own RPC program, served by virtkitd on the same socket as libvirt's REMOTE program: what
 * libvirt's protocol lacks. The generic job list and verbs, job events (`job:progress` included) and
 * event replay with `since`. Same framing, header and error shape as REMOTE; a libvirtd answers a call
 * to this program with an error ("cannot find program"), which is how a client probes for it.
 *
 * Payloads are XDR strings holding JSON: job infos and events are plain data (`JobInfo`, `CoreEvent`),
 * and JSON lets the program grow fields without a new procedure.
 *
 * @example A job verb call, encoded and decoded
 * ```ts
 * import { decode, encode } from "../codec.ts";
 * import { JobVerb, VIRTKIT_JOB_VERB, VIRTKIT_PROGRAM } from "./virtkit.ts";
 * const bytes = encode(VIRTKIT_JOB_VERB.args, { id: "job-3", verb: JobVerb.SET_SPEED, bandwidth: 1048576 });
 * const back = decode(VIRTKIT_JOB_VERB.args, bytes);
 * if (back.id !== "job-3" || back.bandwidth !== 1048576 || VIRTKIT_JOB_VERB.program !== VIRTKIT_PROGRAM) throw new Error("unexpected");
 * ```
 *
 * @module
 */
import { hyper, int, optional, struct, uint, voidCodec } from "../codec.ts";
import { nonnullString, type Procedure } from "./common.ts";

/** The program number: ASCII "vktd". */
export const VIRTKIT_PROGRAM = 0x766b7464;
/** Its version. */
export const VIRTKIT_PROTOCOL_VERSION = 1;

function virtkitProcedure<A, R>(number: number, name: string, args: Procedure<A, R>["args"], ret: Procedure<A, R>["ret"]): Procedure<A, R> {
  return Object.freeze({ program: VIRTKIT_PROGRAM, version: VIRTKIT_PROTOCOL_VERSION, number, name, args, ret });
}

/** What the daemon offers: `{ version, features }` (features: `"jobs"`, `"events"`, `"volumes"`). */
export const VIRTKIT_PROBE = virtkitProcedure(1, "VIRTKIT_PROBE", voidCodec, struct({ version: uint, features: nonnullString }));

/** Every job of the open connection: args a JSON `JobListFilter` (without `signal`), ret a JSON `JobInfo[]`. */
export const VIRTKIT_JOB_LIST = virtkitProcedure(2, "VIRTKIT_JOB_LIST", nonnullString, nonnullString);

/** One job by id: ret a JSON `JobInfo` (VIR_ERR_NO_SUPPORT-free: an unknown id is a not-found error). */
export const VIRTKIT_JOB_GET = virtkitProcedure(3, "VIRTKIT_JOB_GET", nonnullString, nonnullString);

/** The job verbs, in `VIRTKIT_JOB_VERB`'s `verb` field. */
export const JobVerb = Object.freeze({ PAUSE: 1, RESUME: 2, ABORT: 3, FINALIZE: 4, DISMISS: 5, SET_SPEED: 6 });

/** Applies a verb to a job; `bandwidth` (bytes per second) is read by SET_SPEED only. */
export const VIRTKIT_JOB_VERB = virtkitProcedure(4, "VIRTKIT_JOB_VERB", struct({ id: nonnullString, verb: int, bandwidth: hyper }), voidCodec);

/**
 * Subscribes to the connection's events: `types` a JSON array of patterns (`["job:*"]`, empty for all),
 * `since` replays buffered events with a greater `seq` first (a `gap` event says what is lost). Events
 * arrive as VIRTKIT_EVENT messages tagged with the returned subscription id.
 */
export const VIRTKIT_SUBSCRIBE = virtkitProcedure(5, "VIRTKIT_SUBSCRIBE", struct({ types: nonnullString, since: optional(hyper) }), struct({ subscription: int }));

/** Ends a subscription. */
export const VIRTKIT_UNSUBSCRIBE = virtkitProcedure(6, "VIRTKIT_UNSUBSCRIBE", struct({ subscription: int }), voidCodec);

/** An event MESSAGE: the subscription it belongs to and the event as JSON (a `CoreEvent`). */
export const VIRTKIT_EVENT = virtkitProcedure(7, "VIRTKIT_EVENT", struct({ subscription: int, event: nonnullString }), voidCodec);

/**
 * Starts a volume job libvirt's protocol cannot express (a capped clone or wipe, allocate, an offline
 * pull): args a JSON {@linkcode VolumeJobRequest}, ret the new job's JSON `JobInfo` (at once: the job runs on).
 */
export const VIRTKIT_JOB_START = virtkitProcedure(8, "VIRTKIT_JOB_START", nonnullString, nonnullString);

/** A volume's extents (`vol.extents()`): args a JSON `{ pool, volume, offset?, length? }`, ret a JSON `VolumeExtent[]`. */
export const VIRTKIT_VOLUME_EXTENTS = virtkitProcedure(9, "VIRTKIT_VOLUME_EXTENTS", nonnullString, nonnullString);

/**
 * Fault injection and fixtures of a `test:` connection (`conn.testing`): args a JSON
 * {@linkcode TestingRequest}; a connection without them answers VIR_ERR_NO_SUPPORT.
 */
export const VIRTKIT_TESTING = virtkitProcedure(10, "VIRTKIT_TESTING", nonnullString, voidCodec);

/** What {@linkcode VIRTKIT_TESTING} does; errors travel as their message. */
export type TestingRequest =
  | { readonly operation: "failNext"; readonly target: string; readonly message: string }
  | { readonly operation: "failJob"; readonly id: string; readonly message: string; readonly atBytes?: number }
  | { readonly operation: "load"; readonly fixture: unknown }
  | { readonly operation: "guestWrite"; readonly domain: string; readonly disk: string; readonly offset: number; readonly base64: string };

/** What {@linkcode VIRTKIT_JOB_START} starts, on the volume `pool`/`volume`. */
export type VolumeJobRequest =
  | { readonly operation: "clone"; readonly pool: string; readonly volume: string; readonly name: string; readonly format?: "raw" | "qcow2"; readonly bandwidth?: number }
  | { readonly operation: "wipe" | "pull"; readonly pool: string; readonly volume: string; readonly bandwidth?: number }
  | { readonly operation: "allocate"; readonly pool: string; readonly volume: string; readonly offset?: number; readonly length?: number; readonly bandwidth?: number };

/** Every procedure of the program, by number. */
export const VIRTKIT_PROCEDURES: ReadonlyMap<number, Procedure<unknown, unknown>> = new Map(
  [VIRTKIT_PROBE, VIRTKIT_JOB_LIST, VIRTKIT_JOB_GET, VIRTKIT_JOB_VERB, VIRTKIT_SUBSCRIBE, VIRTKIT_UNSUBSCRIBE, VIRTKIT_EVENT, VIRTKIT_JOB_START, VIRTKIT_VOLUME_EXTENTS, VIRTKIT_TESTING]
    .map((p) => [p.number, p as Procedure<unknown, unknown>]),
);
