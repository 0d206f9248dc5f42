import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { QmpError } from "../../../../core/errors.ts";
import { QmpClient } from "../../../../drivers/qemu/qmp/client.ts";
import {
  createFakeQmpPeer,
  createReplayPeer,
  parseQmpTranscript,
  type QmpTranscript,
  recordQmpTranscript,
} from "../../../../drivers/qemu/qmp/testing/mod.ts";
import type { JsonValue, QmpEvent } from "../../../../drivers/qemu/qmp/types.ts";

const fixtureDir = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..", "..", "..", "fixtures", "qmp");
const fixtures = readdirSync(fixtureDir).filter((name) => name.endsWith(".jsonl")).sort();
const load = (name: string) => parseQmpTranscript(readFileSync(join(fixtureDir, name), "utf8"));

/** Drives the real client through every recorded command; returns the outcomes and the events seen. */
async function replay(transcript: QmpTranscript) {
  const peer = createReplayPeer(transcript);
  const qmp = await QmpClient.connect(peer.transport);
  const events: QmpEvent[] = [];
  qmp.on("*", (event) => events.push(event));
  const outcomes: Array<{ return: JsonValue } | QmpError> = [];
  for (const exchange of transcript.exchanges.slice(1)) {
    outcomes.push(await qmp.execute(exchange.command, exchange.arguments).then((value) => ({ return: value }), (error) => error));
  }
  if (transcript.hangUp) await qmp.closed;
  else await qmp.close();
  return { peer, outcomes, events };
}

describe("recorded QMP transcripts (test/fixtures/qmp)", () => {
  it("are there, small, and recorded from QEMU 7.2", () => {
    expect(fixtures).toEqual(["errors.jsonl", "handshake.jsonl", "stream_cancel.jsonl", "stream_manual.jsonl"]);
    for (const name of fixtures) {
      expect(readFileSync(join(fixtureDir, name)).byteLength).toBeLessThan(50 * 1024);
      const transcript = load(name);
      expect(transcript.greeting.QMP.version.qemu).toMatchObject({ major: 7, minor: 2 });
      expect(transcript.exchanges[0]!.command).toBe("qmp_capabilities");
      expect(transcript.exchanges.at(-1)!.command).toBe("quit");
      expect(transcript.hangUp).toBe(true);
    }
  });

  it.each(fixtures.map((name) => ({ name })))("$name replays through the real QmpClient", async ({ name }) => {
    const transcript = load(name);
    const { peer, outcomes, events } = await replay(transcript);
    peer.assertDone();
    transcript.exchanges.slice(1).forEach((exchange, i) => {
      const outcome = outcomes[i]!;
      if ("error" in exchange.reply) {
        expect(outcome).toBeInstanceOf(QmpError);
        expect(outcome).toMatchObject({ errorClass: exchange.reply.error.class, desc: exchange.reply.error.desc, command: exchange.command });
      } else {
        expect(outcome).toEqual({ return: exchange.reply.return });
      }
    });
    const recorded = transcript.exchanges.slice(1).flatMap((e) => [...e.before, ...e.after]);
    expect(events).toEqual(recorded.map((e) => ({ ...e, data: e.data ?? {} })));
  });

  it("stream_manual: a manual-finalize stream goes pending, then COMPLETED on job-finalize", async () => {
    const { events } = await replay(load("stream_manual.jsonl"));
    const statuses = events.filter((e) => e.event === "JOB_STATUS_CHANGE").map((e) => e.data.status);
    expect(statuses).toEqual(["created", "running", "paused", "running", "waiting", "pending", "concluded", "null"]);
    const completed = events.find((e) => e.event === "BLOCK_JOB_COMPLETED")!;
    expect(completed.data).toMatchObject({ device: "pull", len: 67108864, offset: 67108864, speed: 33554432, type: "stream" });
    expect(completed.data.error).toBeUndefined();
  });

  it("stream_cancel: job-cancel ends with BLOCK_JOB_CANCELLED short of the end", async () => {
    const { events } = await replay(load("stream_cancel.jsonl"));
    const cancelled = events.find((e) => e.event === "BLOCK_JOB_CANCELLED")!;
    expect(cancelled.data.device).toBe("slow");
    expect(cancelled.data.offset as number).toBeLessThan(cancelled.data.len as number);
    expect(events.some((e) => e.event === "BLOCK_JOB_COMPLETED")).toBe(false);
  });

  it("errors: QMP error classes survive the replay", async () => {
    const { outcomes } = await replay(load("errors.jsonl"));
    const classes = outcomes.filter((o): o is QmpError => o instanceof QmpError).map((e) => `${e.command}:${e.errorClass}`);
    expect(classes).toEqual([
      "block-stream:GenericError",
      "block-job-set-speed:DeviceNotActive",
      "job-pause:GenericError",
      "no-such-command:CommandNotFound",
      "blockdev-add:GenericError",
      "block-stream:GenericError",
    ]);
  });
});

const GREETING = '{"dir":"in","msg":{"QMP":{"version":{"qemu":{"micro":0,"minor":2,"major":7},"package":""},"capabilities":[]}}}';
const CAPS = ['{"dir":"out","msg":{"execute":"qmp_capabilities","id":1}}', '{"dir":"in","msg":{"return":{},"id":1}}'];

describe("createReplayPeer()", () => {
  it("refuses a command that differs from the recording and fails assertDone()", async () => {
    const peer = createReplayPeer(load("handshake.jsonl"));
    const qmp = await QmpClient.connect(peer.transport);
    const error = await qmp.execute("query-status").catch((e) => e);
    expect(error.errorClass).toBe("UnexpectedCommand");
    expect(() => peer.assertDone()).toThrow(/expected "query-version"/);
    await qmp.close();
  });

  it("fills ${NAME} placeholders from variables", async () => {
    const text = [GREETING, ...CAPS,
      '{"dir":"out","msg":{"execute":"blockdev-del","arguments":{"node-name":"${WORK}/x"},"id":2}}',
      '{"dir":"in","msg":{"id":2,"error":{"class":"GenericError","desc":"Failed to find node with node-name=\'${WORK}/x\'"}}}',
    ].join("\n");
    const peer = createReplayPeer(text, { variables: { WORK: "/srv/vm" } });
    const qmp = await QmpClient.connect(peer.transport);
    const error = await qmp.execute("blockdev-del", { "node-name": "/srv/vm/x" }).catch((e) => e);
    expect(error.desc).toBe("Failed to find node with node-name='/srv/vm/x'");
    peer.assertDone();
    await qmp.close();
  });
});

describe("parseQmpTranscript()", () => {
  it.each([
    { why: "not JSON", lines: [GREETING, "nope"], message: /line 2: not JSON/ },
    { why: "no greeting", lines: [CAPS[0]!], message: /line 1: a command before the greeting/ },
    { why: "a reply with no command", lines: [GREETING, CAPS[1]!], message: /line 2: a reply without a command/ },
    { why: "pipelined commands", lines: [GREETING, CAPS[0]!, CAPS[0]!], message: /line 3: .* before the reply/ },
    { why: "a mismatched reply id", lines: [GREETING, CAPS[0]!, '{"dir":"in","msg":{"return":{},"id":7}}'], message: /reply id 7/ },
    { why: "an unknown dir", lines: [GREETING, '{"dir":"sideways","msg":{}}'], message: /unknown dir/ },
    { why: "lines after eof", lines: [GREETING, '{"dir":"eof"}', CAPS[0]!], message: /follow eof/ },
    { why: "a command without its reply", lines: [GREETING, CAPS[0]!], message: /has no reply/ },
    { why: "an empty text", lines: [], message: /no greeting/ },
  ])("rejects $why with TypeError", ({ lines, message }) => {
    expect(() => parseQmpTranscript(lines.join("\n"))).toThrow(TypeError);
    expect(() => parseQmpTranscript(lines.join("\n"))).toThrow(message);
  });
});

describe("recordQmpTranscript()", () => {
  it("records both directions and hang-up, with placeholders, in a form createReplayPeer plays back", async () => {
    const peer = createFakeQmpPeer();
    peer.expect("blockdev-add", { return: {} }, { args: { driver: "file", "node-name": "f", filename: "/tmp/abc/disk.raw" } });
    peer.expect("quit", { return: {} }, { emitBefore: [{ event: "SHUTDOWN", data: { guest: false } }], thenHangUp: true });
    const recorder = recordQmpTranscript(peer.transport, { placeholders: { "/tmp/abc": "WORK" }, notes: ["made in a test"] });
    const qmp = await QmpClient.connect(recorder.transport);
    await qmp.execute("blockdev-add", { driver: "file", "node-name": "f", filename: "/tmp/abc/disk.raw" });
    await qmp.execute("quit");
    await qmp.closed;
    peer.assertDone();
    expect(recorder.lines().map((l) => l.dir)).toEqual(["note", "in", "out", "in", "out", "in", "out", "in", "in", "eof"]);
    expect(recorder.toJsonl()).toContain('"filename":"${WORK}/disk.raw"');

    const transcript = parseQmpTranscript(recorder.toJsonl(), { variables: { WORK: "/elsewhere" } });
    expect(transcript.notes).toEqual(["made in a test"]);
    const again = createReplayPeer(transcript);
    const client = await QmpClient.connect(again.transport);
    const shutdown = client.waitFor("SHUTDOWN");
    await client.execute("blockdev-add", { driver: "file", "node-name": "f", filename: "/elsewhere/disk.raw" });
    await client.execute("quit");
    await shutdown;
    await client.closed;
    again.assertDone();
  });
});
