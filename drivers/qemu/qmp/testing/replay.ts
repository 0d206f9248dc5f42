/**
 * Replay of QMP transcripts recorded from real QEMU runs. A transcript is JSON lines:
 *
 * ```
 * {"dir":"note","text":"how it was made"}
 * {"dir":"in","msg":{"QMP":{...}}}                         greeting
 * {"dir":"out","msg":{"execute":"qmp_capabilities","id":1}}
 * {"dir":"in","msg":{"return":{},"id":1}}
 * {"dir":"in","msg":{"timestamp":{...},"event":"JOB_STATUS_CHANGE","data":{...}}}
 * {"dir":"eof"}                                             QEMU hung up
 * ```
 *
 * Commands must be sequential (each reply before the next command). Strings may hold `${NAME}`
 * placeholders (the recorder writes `${WORK}` for its scratch directory) that `variables` fill in.
 *
 * @module
 */
import { createFakeQmpPeer, type FakeQmpEvent, type FakeQmpPeer, type FakeQmpReply } from "./fake_peer.ts";
import { isJsonObject, jsonEqual, type JsonObject, type JsonValue, type QmpGreeting } from "../types.ts";

/** A message in a transcript: `out` from the client, `in` from QEMU. */
export interface QmpTranscriptMessage {
  /** Direction. */
  readonly dir: "out" | "in";
  /** The message as it was on the wire. */
  readonly msg: JsonObject;
}

/** QEMU hung up (after `quit`). */
export interface QmpTranscriptEof {
  /** Marker. */
  readonly dir: "eof";
}

/** A comment on how the transcript was made. */
export interface QmpTranscriptNote {
  /** Marker. */
  readonly dir: "note";
  /** The comment. */
  readonly text: string;
}

/** One line of a transcript. */
export type QmpTranscriptLine = QmpTranscriptMessage | QmpTranscriptEof | QmpTranscriptNote;

/** One command with what QEMU sent around it. */
export interface QmpExchange {
  /** Command name. */
  readonly command: string;
  /** Its arguments, when it had any. */
  readonly arguments?: JsonObject;
  /** Events that arrived between the command and its reply. */
  readonly before: readonly FakeQmpEvent[];
  /** The reply, without its id. */
  readonly reply: FakeQmpReply;
  /** Events that arrived after the reply and before the next command. */
  readonly after: readonly FakeQmpEvent[];
}

/** A parsed transcript. Events keep their wire form (`data` absent when QEMU sent none). */
export interface QmpTranscript {
  /** The greeting. */
  readonly greeting: QmpGreeting;
  /** Events after the greeting and before the first command. */
  readonly preamble: readonly FakeQmpEvent[];
  /** The commands in order. */
  readonly exchanges: readonly QmpExchange[];
  /** Whether QEMU hung up at the end. */
  readonly hangUp: boolean;
  /** The `note` lines. */
  readonly notes: readonly string[];
}

/** Options of {@linkcode parseQmpTranscript} and {@linkcode createReplayPeer}. */
export interface QmpTranscriptOptions {
  /** Values for `${NAME}` placeholders in strings. */
  variables?: Readonly<Record<string, string>>;
}

/**
 * Parses a JSON-lines transcript.
 *
 * @param text The transcript.
 * @param options Placeholder values.
 * @returns The greeting, exchanges and trailing hang-up.
 * @throws {TypeError} When a line is malformed or out of sequence, naming its line number.
 * @example
 * ```ts
 * import { parseQmpTranscript } from "./replay.ts";
 * const transcript = parseQmpTranscript([
 *   '{"dir":"in","msg":{"QMP":{"version":{"qemu":{"micro":0,"minor":2,"major":7},"package":""},"capabilities":[]}}}',
 *   '{"dir":"out","msg":{"execute":"qmp_capabilities","id":1}}',
 *   '{"dir":"in","msg":{"return":{},"id":1}}',
 * ].join("\n"));
 * if (transcript.exchanges[0]?.command !== "qmp_capabilities") throw new Error("unexpected");
 * ```
 */
export function parseQmpTranscript(text: string, options: QmpTranscriptOptions = {}): QmpTranscript {
  if (typeof text !== "string") throw new TypeError("Invalid QMP transcript: expected a string");
  let greeting: QmpGreeting | undefined;
  const preamble: FakeQmpEvent[] = [];
  const exchanges: Array<{ command: string; arguments?: JsonObject; id?: JsonValue; before: FakeQmpEvent[]; reply?: FakeQmpReply; after: FakeQmpEvent[] }> = [];
  const notes: string[] = [];
  let hangUp = false;
  text.split("\n").forEach((raw, index) => {
    if (raw.trim() === "") return;
    const fail = (why: string): never => {
      throw new TypeError(`Invalid QMP transcript line ${index + 1}: ${why}`);
    };
    let line: unknown;
    try {
      line = JSON.parse(raw);
    } catch {
      fail("not JSON");
    }
    if (!isJsonObject(line)) return fail("not an object");
    if (line.dir === "note") return void notes.push(String(line.text ?? ""));
    if (hangUp) fail("nothing may follow eof");
    if (line.dir === "eof") return void (hangUp = true);
    const msg = line.msg;
    if (!isJsonObject(msg)) return fail(`"msg" is not an object`);
    const filled = substitute(msg, options.variables ?? {}) as JsonObject;
    const last = exchanges.at(-1);
    if (line.dir === "out") {
      if (!greeting) fail("a command before the greeting");
      if (last && !last.reply) fail(`"${String(filled.execute)}" sent before the reply to "${last.command}"`);
      if (typeof filled.execute !== "string") fail(`a command without "execute"`);
      const args = filled.arguments;
      if (args !== undefined && !isJsonObject(args)) fail(`arguments of "${String(filled.execute)}" are not an object`);
      exchanges.push({ command: filled.execute as string, ...(args ? { arguments: args as JsonObject } : {}), id: filled.id, before: [], after: [] });
      return;
    }
    if (line.dir !== "in") return fail(`unknown dir ${JSON.stringify(line.dir)}`);
    if (!greeting) {
      if (!isJsonObject(filled.QMP)) fail("the first message from QEMU is not a greeting");
      return void (greeting = filled as unknown as QmpGreeting);
    }
    if (typeof filled.event === "string") {
      const event = filled as unknown as FakeQmpEvent;
      if (!last) preamble.push(event);
      else (last.reply ? last.after : last.before).push(event);
      return;
    }
    if (!("return" in filled) && !("error" in filled)) fail("neither a reply nor an event");
    if (!last || last.reply) fail("a reply without a command waiting for it");
    if (last!.id !== undefined && filled.id !== undefined && !jsonEqual(last!.id, filled.id)) fail(`reply id ${JSON.stringify(filled.id)} does not match ${JSON.stringify(last!.id)}`);
    if ("error" in filled) {
      const error = filled.error;
      if (!isJsonObject(error) || typeof error.class !== "string" || typeof error.desc !== "string") fail("an error without class and desc");
      last!.reply = { error: { class: (error as JsonObject).class as string, desc: (error as JsonObject).desc as string } };
    } else {
      last!.reply = { return: filled.return as JsonValue };
    }
  });
  if (!greeting) throw new TypeError("Invalid QMP transcript: it has no greeting");
  const open = exchanges.at(-1);
  if (open && !open.reply) throw new TypeError(`Invalid QMP transcript: "${open.command}" has no reply`);
  return {
    greeting,
    preamble,
    exchanges: exchanges.map(({ id: _id, reply, ...rest }) => ({ ...rest, reply: reply! })),
    hangUp,
    notes,
  };
}

/**
 * A fake peer that plays a transcript: it sends the recorded greeting, expects the recorded commands
 * in order (matched by name and arguments; ids are the client's own), and answers each with the
 * recorded events and reply. `qmp_capabilities` is part of the transcript, not answered automatically.
 *
 * @param transcript A parsed transcript or its text.
 * @param options Placeholder values (used when `transcript` is text).
 * @returns The peer; `assertDone()` fails if the client did not send every recorded command.
 * @example
 * ```ts
 * import { createReplayPeer } from "./replay.ts";
 * import { QmpClient } from "../client.ts";
 * await using peer = createReplayPeer([
 *   '{"dir":"in","msg":{"QMP":{"version":{"qemu":{"micro":0,"minor":2,"major":7},"package":""},"capabilities":[]}}}',
 *   '{"dir":"out","msg":{"execute":"qmp_capabilities","id":1}}',
 *   '{"dir":"in","msg":{"return":{},"id":1}}',
 *   '{"dir":"out","msg":{"execute":"query-target","id":2}}',
 *   '{"dir":"in","msg":{"return":{"arch":"x86_64"},"id":2}}',
 * ].join("\n"));
 * await using qmp = await QmpClient.connect(peer.transport);
 * const target = await qmp.execute<{ arch: string }>("query-target");
 * if (target.arch !== "x86_64") throw new Error("unexpected");
 * ```
 */
export function createReplayPeer(transcript: QmpTranscript | string, options: QmpTranscriptOptions = {}): FakeQmpPeer {
  const parsed = typeof transcript === "string" ? parseQmpTranscript(transcript, options) : transcript;
  const peer = createFakeQmpPeer({ greeting: parsed.greeting, autoCapabilities: false });
  for (const event of parsed.preamble) peer.emit(event);
  parsed.exchanges.forEach((exchange, index) => {
    peer.expect(exchange.command, exchange.reply, {
      args: exchange.arguments ?? {},
      emitBefore: exchange.before,
      thenEmit: exchange.after,
      thenHangUp: parsed.hangUp && index === parsed.exchanges.length - 1,
    });
  });
  if (parsed.hangUp && parsed.exchanges.length === 0) peer.hangUp();
  return peer;
}

function substitute(value: JsonValue, variables: Readonly<Record<string, string>>): JsonValue {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name: string) => variables[name] ?? whole);
  }
  if (Array.isArray(value)) return value.map((item) => substitute(item, variables));
  if (isJsonObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, variables)]));
  return value;
}
