/**
 * virtkit's extension program on virtkitd's socket: probe, the generic job list (storage jobs included)
 * and verbs, job:progress events, and replay with `since` for a client that reconnects.
 */
import { describe, expect, it } from "vitest";
import type { CoreEvent } from "../../core/events.ts";
import type { JobInfo } from "../../core/job.ts";
import { LibvirtErrorCode } from "../../drivers/remote/rpc/errors.ts";
import { CONNECT_OPEN } from "../../drivers/remote/rpc/protocol/connect.ts";
import {
  JobVerb,
  VIRTKIT_EVENT,
  VIRTKIT_JOB_GET,
  VIRTKIT_JOB_LIST,
  VIRTKIT_JOB_START,
  VIRTKIT_JOB_VERB,
  VIRTKIT_PROBE,
  VIRTKIT_SUBSCRIBE,
  VIRTKIT_TESTING,
  VIRTKIT_UNSUBSCRIBE,
  VIRTKIT_VOLUME_EXTENTS,
} from "../../drivers/remote/rpc/protocol/virtkit.ts";
import { errorCodeOf, rpcClient } from "./_support/raw_client.ts";
import { skipDaemon, type VirtkitdProcess, useVirtkitd, virsh } from "./_support/virtkitd.ts";

async function opened(daemon: VirtkitdProcess, flags = 0) {
  const c = await rpcClient(daemon.socket);
  await c.client.call(CONNECT_OPEN, { name: "test:///default", flags });
  return c;
}

async function until<T>(get: () => T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = get();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(skipDaemon)("virtkit's extension program on virtkitd", () => {
  let daemon: VirtkitdProcess;
  useVirtkitd((started) => {
    daemon = started;
  });

  it("is probed, lists every job (a virsh block pull included) and applies the verbs", async () => {
    const { client, socket } = await opened(daemon);
    try {
      expect(await client.call(VIRTKIT_PROBE, undefined)).toEqual({ version: 1, features: "jobs events volumes" });
      expect((await virsh(daemon.uri(), ["blockpull", "test", "vda", "--bandwidth", "1"])).code).toBe(0);
      const jobs = JSON.parse(await client.call(VIRTKIT_JOB_LIST, "{}")) as JobInfo[];
      const pull = jobs.find((j) => j.type === "block-pull" && j.state === "running")!;
      expect(pull.target).toMatchObject({ domain: "test", disk: "vda" });
      expect(pull.bandwidth).toBe(1024 * 1024);
      expect(JSON.parse(await client.call(VIRTKIT_JOB_LIST, JSON.stringify({ type: "volume-clone" })))).toEqual([]);
      await client.call(VIRTKIT_JOB_VERB, { id: pull.id, verb: JobVerb.SET_SPEED, bandwidth: 2 * 1024 * 1024 });
      await client.call(VIRTKIT_JOB_VERB, { id: pull.id, verb: JobVerb.PAUSE, bandwidth: 0 });
      expect((JSON.parse(await client.call(VIRTKIT_JOB_GET, pull.id)) as JobInfo).state).toBe("paused");
      // virsh sees the same job through libvirt's procedures.
      expect((await virsh(daemon.uri(), ["blockjob", "test", "vda", "--info"])).stdout).toMatch(/2097152 bytes\/s/);
      await client.call(VIRTKIT_JOB_VERB, { id: pull.id, verb: JobVerb.RESUME, bandwidth: 0 });
      await client.call(VIRTKIT_JOB_VERB, { id: pull.id, verb: JobVerb.ABORT, bandwidth: 0 });
      expect((JSON.parse(await client.call(VIRTKIT_JOB_GET, pull.id)) as JobInfo).state).toBe("aborted");
      await client.call(VIRTKIT_JOB_VERB, { id: pull.id, verb: JobVerb.DISMISS, bandwidth: 0 });
      expect(await errorCodeOf(client.call(VIRTKIT_JOB_GET, pull.id))).toBeDefined();
      expect(await errorCodeOf(client.call(VIRTKIT_JOB_LIST, "{\"bogus\":1}"))).toBe(LibvirtErrorCode.INVALID_ARG);
      expect(await errorCodeOf(client.call(VIRTKIT_JOB_LIST, "not json"))).toBe(LibvirtErrorCode.INVALID_ARG);
    } finally {
      socket.destroy();
    }
  });

  it("starts capped volume jobs, reads extents, and answers bad requests and bad since with INVALID_ARG", async () => {
    const { client, socket } = await opened(daemon);
    try {
      const request = (r: object) => JSON.stringify(r);
      const clone = JSON.parse(await client.call(VIRTKIT_JOB_START, request({ operation: "clone", pool: "default-pool", volume: "test.qcow2", name: "vp-clone", bandwidth: 65536 }))) as JobInfo;
      expect([clone.type, clone.state, clone.bandwidth, clone.target.volume]).toEqual(["volume-clone", "running", 65536, "vp-clone"]);
      await client.call(VIRTKIT_JOB_VERB, { id: clone.id, verb: JobVerb.SET_SPEED, bandwidth: 0 });
      const extents = JSON.parse(await client.call(VIRTKIT_VOLUME_EXTENTS, request({ pool: "default-pool", volume: "test.qcow2", offset: 0, length: 65536 }))) as { offset: number; length: number }[];
      expect(extents.reduce((n, e) => n + e.length, 0)).toBe(65536);
      for (const bad of ["not json", "[1]", request({ operation: "shred", pool: "default-pool", volume: "test.qcow2" }), request({ operation: "wipe", pool: 1, volume: "v" })]) {
        expect(await errorCodeOf(client.call(VIRTKIT_JOB_START, bad)), bad).toBe(LibvirtErrorCode.INVALID_ARG);
      }
      expect(await errorCodeOf(client.call(VIRTKIT_JOB_START, request({ operation: "wipe", pool: "default-pool", volume: "nope" })))).toBe(LibvirtErrorCode.NO_STORAGE_VOL);
      expect(await errorCodeOf(client.call(VIRTKIT_JOB_START, request({ operation: "wipe", pool: "default-pool", volume: "test.qcow2", bandwidth: -1 })))).toBe(LibvirtErrorCode.INVALID_ARG);
      expect(await errorCodeOf(client.call(VIRTKIT_TESTING, request({ operation: "explode" })))).toBe(LibvirtErrorCode.INVALID_ARG);
      // A since of this run beyond its newest event is refused, not answered with silence.
      const seqs: number[] = [];
      const off = client.onMessage(VIRTKIT_EVENT, ({ event }) => void seqs.push((JSON.parse(event) as CoreEvent).seq));
      const { subscription } = await client.call(VIRTKIT_SUBSCRIBE, { types: "[]", since: 0 });
      const seen = await until(() => seqs[0], "a replayed event");
      await client.call(VIRTKIT_UNSUBSCRIBE, { subscription });
      off();
      const run = Math.floor(seen / 2 ** 32) * 2 ** 32;
      expect(await errorCodeOf(client.call(VIRTKIT_SUBSCRIBE, { types: "[]", since: run + 2 ** 31 }))).toBe(LibvirtErrorCode.INVALID_ARG);
      expect(await errorCodeOf(client.call(VIRTKIT_SUBSCRIBE, { types: "[\"bogus\"]", since: undefined }))).toBe(LibvirtErrorCode.INVALID_ARG);
    } finally {
      socket.destroy();
    }
  });

  it("refuses the job verbs to a read-only client", async () => {
    const { client, socket } = await opened(daemon, 1);
    try {
      expect(JSON.parse(await client.call(VIRTKIT_JOB_LIST, "{}"))).toBeInstanceOf(Array);
      expect(await errorCodeOf(client.call(VIRTKIT_JOB_VERB, { id: "job-1", verb: JobVerb.ABORT, bandwidth: 0 }))).toBe(LibvirtErrorCode.OPERATION_DENIED);
      const wipe = JSON.stringify({ operation: "wipe", pool: "default-pool", volume: "test.qcow2" });
      expect(await errorCodeOf(client.call(VIRTKIT_JOB_START, wipe))).toBe(LibvirtErrorCode.OPERATION_DENIED);
      expect(await errorCodeOf(client.call(VIRTKIT_TESTING, JSON.stringify({ operation: "failNext", target: "domain.start", message: "x" })))).toBe(LibvirtErrorCode.OPERATION_DENIED);
      // Reading extents changes nothing: allowed.
      expect(JSON.parse(await client.call(VIRTKIT_VOLUME_EXTENTS, JSON.stringify({ pool: "default-pool", volume: "test.qcow2" }))).length).toBeGreaterThan(0);
    } finally {
      socket.destroy();
    }
  });

  it("streams job events with progress, and replays what a reconnecting client missed with since", async () => {
    const first = await opened(daemon);
    const seen: CoreEvent[] = [];
    first.client.onMessage(VIRTKIT_EVENT, ({ event }) => seen.push(JSON.parse(event) as CoreEvent));
    const { subscription } = await first.client.call(VIRTKIT_SUBSCRIBE, { types: JSON.stringify(["job:*"]), since: undefined });
    expect((await virsh(daemon.uri(), ["blockpull", "test", "vda", "--bandwidth", "8"])).code).toBe(0);
    // Other tests' jobs on this daemon may still report progress: wait for the pull's own.
    const progress = await until(
      () => seen.find((e) => e.type === "job:progress" && (e as CoreEvent<"job:progress">).job.type === "block-pull"),
      "a job:progress event of the block pull",
    );
    expect((progress as CoreEvent<"job:progress">).job.end).toBeGreaterThan(0);
    const lastSeen = seen.at(-1)!.seq;
    await first.client.call(VIRTKIT_UNSUBSCRIBE, { subscription });
    first.socket.destroy();
    // While nobody listens, the job is aborted (by virsh) and ends.
    expect((await virsh(daemon.uri(), ["blockjob", "test", "vda", "--abort"])).code).toBe(0);
    const second = await opened(daemon);
    try {
      const replayed: CoreEvent[] = [];
      second.client.onMessage(VIRTKIT_EVENT, ({ event }) => replayed.push(JSON.parse(event) as CoreEvent));
      await second.client.call(VIRTKIT_SUBSCRIBE, { types: JSON.stringify(["job:*"]), since: lastSeen });
      const aborted = await until(() => replayed.find((e) => e.type === "job:aborted"), "the replayed job:aborted");
      expect((aborted as CoreEvent<"job:aborted">).job.id).toBe((progress as CoreEvent<"job:progress">).job.id);
      // Replay starts right after the last event the first client saw, in order, without gaps.
      expect(replayed[0]!.seq).toBeGreaterThan(lastSeen);
      expect(replayed.every((e, i) => i === 0 || e.seq > replayed[i - 1]!.seq)).toBe(true);
      expect(replayed.some((e) => e.type === "gap")).toBe(false);
    } finally {
      second.socket.destroy();
    }
  });
});
