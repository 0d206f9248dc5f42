/**
 * Test fakes for the QMP client, public so driver authors can test against them: a fake QMP peer with
 * strict, ordered expectations, replay of transcripts recorded from real QEMU, a recorder that makes
 * such transcripts, and a throwaway QEMU for tests that need the real thing.
 *
 * @example
 * ```ts
 * import { createFakeQmpPeer } from "./mod.ts";
 * import { QmpClient } from "../client.ts";
 * await using peer = createFakeQmpPeer();
 * peer.expect("query-target", { return: { arch: "x86_64" } });
 * await using qmp = await QmpClient.connect(peer.transport);
 * const target = await qmp.execute<{ arch: string }>("query-target");
 * if (target.arch !== "x86_64") throw new Error("unexpected");
 * ```
 *
 * @module
 */
export {
  createFakeQmpPeer,
  type FakeQmpError,
  type FakeQmpEvent,
  type FakeQmpExpectOptions,
  type FakeQmpPeer,
  type FakeQmpPeerOptions,
  type FakeQmpReply,
  type FakeQmpReturn,
  QEMU_7_2_GREETING,
} from "./fake_peer.ts";
export {
  createReplayPeer,
  parseQmpTranscript,
  type QmpExchange,
  type QmpTranscript,
  type QmpTranscriptEof,
  type QmpTranscriptLine,
  type QmpTranscriptMessage,
  type QmpTranscriptNote,
  type QmpTranscriptOptions,
} from "./replay.ts";
export { type QmpRecorder, type QmpRecorderOptions, recordQmpTranscript } from "./recorder.ts";
export {
  createStreamImages,
  findExecutable,
  type QmpQemu,
  type QmpQemuOptions,
  startQmpQemu,
  type StreamImages,
} from "./qemu_process.ts";
