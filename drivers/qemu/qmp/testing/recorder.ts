/**
 * Records what passes through a {@linkcode QmpTransport} as a transcript that `createReplayPeer` plays
 * back: wrap the real socket, run the client over the wrapper, then save `toJsonl()`.
 *
 * @module
 */
import { LineSplitter } from "../line_reader.ts";
import type { QmpTransport } from "../transport.ts";
import { isJsonObject, type JsonObject, type JsonValue } from "../types.ts";
import type { QmpTranscriptLine } from "./replay.ts";

/** Options of {@linkcode recordQmpTranscript}. */
export interface QmpRecorderOptions {
  /** Literal strings to replace by `${NAME}` placeholders, e.g. `{ "/tmp/qmp-x1": "WORK" }`. */
  placeholders?: Readonly<Record<string, string>>;
  /** `note` lines to put first (how the transcript was made). */
  notes?: readonly string[];
}

/** A recording in progress. */
export interface QmpRecorder {
  /** The transport to give the client. */
  readonly transport: QmpTransport;
  /** The lines recorded so far. */
  lines(): QmpTranscriptLine[];
  /** The recording as JSON lines, ready to save. */
  toJsonl(): string;
}

/**
 * Wraps a transport and records every message in both directions, in the order the client saw them,
 * plus an `eof` line when the server hangs up (or the connection fails after `quit`).
 *
 * @param inner The real transport.
 * @param options Placeholders and notes.
 * @returns The recorder.
 * @example
 * ```ts
 * import { createFakeQmpPeer, recordQmpTranscript } from "./mod.ts";
 * import { QmpClient } from "../client.ts";
 * const peer = createFakeQmpPeer();
 * const recorder = recordQmpTranscript(peer.transport);
 * const qmp = await QmpClient.connect(recorder.transport);
 * await qmp.close();
 * if (recorder.lines()[1]?.dir !== "out") throw new Error("unexpected");
 * ```
 */
export function recordQmpTranscript(inner: QmpTransport, options: QmpRecorderOptions = {}): QmpRecorder {
  const recorded: QmpTranscriptLine[] = (options.notes ?? []).map((text) => ({ dir: "note", text }));
  const placeholders = Object.entries(options.placeholders ?? {}).sort((a, b) => b[0].length - a[0].length);
  const tap = (dir: "in" | "out") => {
    const splitter = new LineSplitter();
    return (chunk: Uint8Array) => {
      for (const line of splitter.push(chunk)) {
        const msg = redact(JSON.parse(line) as JsonValue, placeholders);
        if (isJsonObject(msg)) recorded.push({ dir, msg });
      }
    };
  };
  const tapIn = tap("in");
  const tapOut = tap("out");
  const reader = inner.readable.getReader();
  const writer = inner.writable.getWriter();
  let ended = false;
  const end = () => {
    if (!ended) recorded.push({ dir: "eof" });
    ended = true;
  };
  const readable = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await reader.read();
        if (done) {
          end();
          return controller.close();
        }
        tapIn(value);
        controller.enqueue(value);
      } catch (error) {
        end();
        controller.error(error);
      }
    },
    cancel(reason) {
      ended = true;
      return reader.cancel(reason);
    },
  });
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      tapOut(chunk);
      return writer.write(chunk);
    },
    close: () => writer.close(),
    abort: (reason) => writer.abort(reason),
  });
  return {
    transport: {
      readable,
      writable,
      close() {
        ended = true;
        return inner.close();
      },
    },
    lines: () => [...recorded],
    toJsonl: () => recorded.map((line) => JSON.stringify(line)).join("\n") + "\n",
  };
}

function redact(value: JsonValue, placeholders: ReadonlyArray<readonly [string, string]>): JsonValue {
  if (typeof value === "string") {
    return placeholders.reduce((text, [literal, name]) => text.split(literal).join(`\${${name}}`), value);
  }
  if (Array.isArray(value)) return value.map((item) => redact(item, placeholders));
  if (isJsonObject(value)) {
    const out: JsonObject = {};
    for (const [key, item] of Object.entries(value)) out[key] = redact(item, placeholders);
    return out;
  }
  return value;
}
