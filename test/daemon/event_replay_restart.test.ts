/**
 * `subscribe({ since })` across virtkitd restarts, through the remote driver's extension client: after
 * a clean stop the restarted daemon (same --state-dir) replays every event the client missed, those of
 * the stopped run first, seq by seq; after a crash it says so with a `gap` event. With real QEMU, a
 * capped block pull keeps running across the restart and the reconnecting client sees it complete.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import process from "node:process";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { CoreEvent } from "../../core/events.ts";
import { openSession, type RemoteSession } from "../../drivers/remote/session.ts";
import { probeVirtkitExtension, type VirtkitExtension } from "../../drivers/remote/virtkit_extension.ts";
import { connect, MiB } from "../../mod.ts";
import { killAll, Scratch, skipReal } from "../drivers/qemu/_support.ts";
import { RUN_SPAN } from "../../daemon/event_history.ts";
import { skipDaemon, startVirtkitd, type VirtkitdProcess, virsh } from "./_support/virtkitd.ts";

/** Kills the daemon by PID with SIGKILL, its own children first (tsx runs the daemon in a child node). */
function crash(pid: number): void {
  let children: number[] = [];
  try {
    children = execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" }).split("\n").filter(Boolean).map(Number);
  } catch {
    // No children: the daemon is the process itself (Deno).
  }
  for (const child of children) process.kill(child, "SIGKILL");
  process.kill(pid, "SIGKILL");
}

const runOf = (seq: number) => Math.floor(seq / RUN_SPAN);
const nOf = (seq: number) => seq % RUN_SPAN;

async function extensionOn(daemon: VirtkitdProcess, name: string): Promise<{ ext: VirtkitExtension; session: RemoteSession }> {
  const session = await openSession({ transport: "unix", socketPath: daemon.socket, name, readOnly: false });
  const ext = await probeVirtkitExtension(session.client);
  if (!ext) throw new Error("virtkitd did not offer virtkit's program");
  return { ext, session };
}

/** Reads events (all types) from `since` until `done` says stop, or fails after the deadline. */
async function collect(ext: VirtkitExtension, since: number | undefined, done: (event: CoreEvent, all: CoreEvent[]) => boolean, timeoutMs = 60_000): Promise<CoreEvent[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const all: CoreEvent[] = [];
  try {
    for await (const event of ext.subscribe({ ...(since === undefined ? {} : { since }), signal: controller.signal })) {
      all.push(event);
      if (done(event, all)) return all;
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  throw new Error(`Timed out after ${all.length} events: ${all.map((e) => `${e.seq} ${e.type}`).join(", ")}`);
}

/** Every event of `events` that belongs to `run` has the next n after the one before (none lost). */
function assertContiguous(events: readonly CoreEvent[], run: number, fromN: number): void {
  const ns = events.filter((e) => runOf(e.seq) === run).map((e) => nOf(e.seq));
  expect(ns, `seqs of run ${run}`).toEqual(ns.map((_, i) => fromN + i));
}

describe.skipIf(skipDaemon)("virtkitd: since across restarts (test:///default)", () => {
  const scratch = new Scratch();
  const stateDir = join(scratch.dir, "state");
  let daemon: VirtkitdProcess | undefined;
  afterAll(async () => {
    await daemon?.stop();
    await scratch.cleanup();
  });
  const start = async () => (daemon = await startVirtkitd(["--state-dir", stateDir], { dir: scratch.dir }));

  it("replays what a client missed across a clean stop, and says gap after a crash", async () => {
    await start();
    let { ext, session } = await extensionOn(daemon!, "test:///default");
    expect((await virsh(daemon!.uri(), ["suspend", "test"])).code).toBe(0);
    const since = (await collect(ext, 0, (e) => e.type === "domain:suspended")).at(-1)!.seq;
    await session.close();
    // Missed while away: a resume and a suspend/resume pair, then the daemon stops.
    for (const verb of ["resume", "suspend", "resume"]) expect((await virsh(daemon!.uri(), [verb, "test"])).code).toBe(0);
    await daemon!.stop();
    await start();
    ({ ext, session } = await extensionOn(daemon!, "test:///default"));
    expect((await virsh(daemon!.uri(), ["suspend", "test"])).code).toBe(0);
    const replayed = await collect(ext, since, (e) => runOf(e.seq) !== runOf(since) && e.type === "domain:suspended");
    expect(replayed.some((e) => e.type === "gap"), JSON.stringify(replayed)).toBe(false);
    const oldRun = replayed.filter((e) => runOf(e.seq) === runOf(since));
    expect(oldRun.map((e) => e.type)).toEqual(["domain:resumed", "domain:suspended", "domain:resumed"]);
    assertContiguous(replayed, runOf(since), nOf(since) + 1);
    const newRun = replayed.filter((e) => runOf(e.seq) !== runOf(since));
    expect(runOf(newRun[0]!.seq)).toBe(runOf(since) + 1);
    assertContiguous(replayed, runOf(newRun[0]!.seq), 1);
    const last = replayed.at(-1)!.seq;
    await session.close();

    // A crash saves nothing: the next run answers a since from it with a gap of unknown size first.
    expect((await virsh(daemon!.uri(), ["resume", "test"])).code).toBe(0);
    crash(daemon!.pid);
    await daemon!.stop();
    await start();
    ({ ext, session } = await extensionOn(daemon!, "test:///default"));
    expect((await virsh(daemon!.uri(), ["suspend", "test"])).code).toBe(0);
    const afterCrash = await collect(ext, last, (e) => e.type === "domain:suspended" && runOf(e.seq) === runOf(last) + 1);
    const gap = afterCrash.find((e): e is CoreEvent<"gap"> => e.type === "gap");
    expect(gap, JSON.stringify(afterCrash)).toMatchObject({ fromSeq: last + 1, missed: -1 });
    expect(afterCrash.indexOf(gap!)).toBeLessThan(afterCrash.findIndex((e) => runOf(e.seq) === runOf(last) + 1));
    expect((await virsh(daemon!.uri(), ["resume", "test"])).code).toBe(0);
    await session.close();
  }, 120_000);
});

function domainXml(name: string, disk: string): string {
  return `<domain type='kvm'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='none'>hvm</type></os>
  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${disk}'/>
  <target dev='vda' bus='virtio'/></disk></devices></domain>`;
}

describe.skipIf(skipDaemon || skipReal)("virtkitd: since across a restart during a QEMU block pull", () => {
  const scratch = new Scratch();
  const stateDir = join(scratch.dir, "daemon-state");
  let daemon: VirtkitdProcess | undefined;
  afterAll(async () => {
    await daemon?.stop();
    killAll(stateDir);
    await scratch.cleanup();
  });
  const start = async () => (daemon = await startVirtkitd(["--allow", "qemu:///session", "--state-dir", stateDir], { dir: scratch.dir }));

  it("a reconnecting client gets every job event it missed and sees the pull complete", async () => {
    await start();
    const { overlay } = scratch.images(32);
    const file = join(scratch.dir, "vm.xml");
    writeFileSync(file, domainXml("vmr", overlay));
    const uri = daemon!.uri("qemu:///session");
    expect((await virsh(uri, ["define", file])).code).toBe(0);
    expect((await virsh(uri, ["start", "vmr"])).code).toBe(0);
    // The pull, started through the remote driver, is the daemon's job.
    let jobId: string;
    {
      await using conn = await connect(uri);
      const job = await (await conn.domains.get("vmr")).blockPull("vda", { bandwidth: MiB(2) });
      jobId = job.id;
    }
    let { ext, session } = await extensionOn(daemon!, "qemu:///session");
    const before = await collect(ext, 0, (e) => e.type === "job:progress" && e.job.id === jobId);
    const since = before.at(-1)!.seq;
    await session.close();
    await daemon!.stop();
    await start();
    ({ ext, session } = await extensionOn(daemon!, "qemu:///session"));
    const events = await collect(ext, since, (e) => e.type === "job:completed" && runOf(e.seq) !== runOf(since), 120_000);
    expect(events.some((e) => e.type === "gap"), events.map((e) => `${e.seq} ${e.type}`).join()).toBe(false);
    assertContiguous(events, runOf(since), nOf(since) + 1);
    const newRun = events.filter((e) => runOf(e.seq) !== runOf(since));
    assertContiguous(events, runOf(newRun[0]!.seq), 1);
    // The restarted daemon found the pull again and reported its end to the reconnecting client.
    expect(newRun.some((e) => e.type === "job:created" && e.job.type === "block-pull")).toBe(true);
    await session.close();
    await using conn = await connect(uri);
    const [pull] = await conn.jobs.list({ type: "block-pull" });
    expect((await pull!.info()).state).toBe("completed");
    expect((await virsh(uri, ["destroy", "vmr"])).code).toBe(0);
  }, 240_000);
});
