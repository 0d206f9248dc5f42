/**
 * Records the QMP transcripts in test/fixtures/qmp/ from a real QEMU, so they can be re-made when QEMU
 * changes:
 *
 *   npx tsx scripts/record_qmp.ts [outDir]        (or: deno run -A scripts/record_qmp.ts [outDir])
 *
 * Each scenario starts `qemu-system-x86_64 -machine none` in a scratch directory, drives it through the
 * real QmpClient over a recording transport, and writes `<scenario>.jsonl` with the scratch directory
 * replaced by `${WORK}`. Needs qemu-system-x86_64, qemu-img and qemu-io on PATH.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { QmpClient } from "../drivers/qemu/qmp/client.ts";
import { createStreamImages, recordQmpTranscript, type StreamImages, startQmpQemu } from "../drivers/qemu/qmp/testing/mod.ts";

const MiB = 1024 * 1024;

interface Scenario {
  readonly name: string;
  readonly note: string;
  run(qmp: QmpClient, images: StreamImages): Promise<void>;
}

const addOverlay = (qmp: QmpClient, images: StreamImages) =>
  qmp.execute("blockdev-add", {
    driver: "qcow2",
    "node-name": "ov",
    file: { driver: "file", filename: images.overlay },
    backing: { driver: "raw", "node-name": "base", file: { driver: "file", filename: images.base } },
  });

const quit = async (qmp: QmpClient) => {
  await qmp.execute("quit");
  await qmp.closed;
};

const scenarios: Scenario[] = [
  {
    name: "handshake",
    note: "greeting, qmp_capabilities, query-version, quit",
    async run(qmp) {
      await qmp.execute("query-version");
      await quit(qmp);
    },
  },
  {
    name: "stream_manual",
    note: "blockdev-add with explicit backing; block-stream (16 MiB/s, auto-finalize/dismiss off); query-jobs; " +
      "block-job-set-speed 32 MiB/s; job-pause/job-resume; pending; job-finalize; job-dismiss; blockdev-del; quit",
    async run(qmp, images) {
      await addOverlay(qmp, images);
      const job = { id: "pull" };
      const pending = qmp.waitFor("JOB_STATUS_CHANGE", { ...job, status: "pending" });
      await qmp.execute("block-stream", { "job-id": "pull", device: "ov", speed: 16 * MiB, "auto-finalize": false, "auto-dismiss": false });
      await qmp.execute("query-jobs");
      await qmp.execute("block-job-set-speed", { device: "pull", speed: 32 * MiB });
      const paused = qmp.waitFor("JOB_STATUS_CHANGE", { ...job, status: "paused" });
      await qmp.execute("job-pause", job);
      await paused;
      await qmp.execute("query-jobs");
      const running = qmp.waitFor("JOB_STATUS_CHANGE", { ...job, status: "running" });
      await qmp.execute("job-resume", job);
      await running;
      await pending;
      await qmp.execute("query-jobs");
      const concluded = qmp.waitFor("JOB_STATUS_CHANGE", { ...job, status: "concluded" });
      await qmp.execute("job-finalize", job);
      await concluded;
      const gone = qmp.waitFor("JOB_STATUS_CHANGE", { ...job, status: "null" });
      await qmp.execute("job-dismiss", job);
      await gone;
      await qmp.execute("query-jobs");
      await qmp.execute("blockdev-del", { "node-name": "ov" });
      await quit(qmp);
    },
  },
  {
    name: "stream_cancel",
    note: "block-stream at 4 MiB/s with default auto-finalize/dismiss, job-cancel mid-way: BLOCK_JOB_CANCELLED",
    async run(qmp, images) {
      await addOverlay(qmp, images);
      const job = { id: "slow" };
      await qmp.execute("block-stream", { "job-id": "slow", device: "ov", speed: 4 * MiB });
      await qmp.execute("query-jobs");
      const gone = qmp.waitFor("JOB_STATUS_CHANGE", { ...job, status: "null" });
      await qmp.execute("job-cancel", job);
      await gone;
      await qmp.execute("query-jobs");
      await qmp.execute("blockdev-del", { "node-name": "ov" });
      await quit(qmp);
    },
  },
  {
    name: "errors",
    note: "error replies: unknown device (GenericError), unknown job (DeviceNotActive, GenericError), " +
      "unknown command (CommandNotFound), missing file (GenericError), busy node (GenericError)",
    async run(qmp, images) {
      const attempts: Array<[string, Record<string, unknown>?]> = [
        ["block-stream", { "job-id": "x", device: "nope" }],
        ["block-job-set-speed", { device: "nojob", speed: 1 }],
        ["job-pause", { id: "nojob" }],
        ["no-such-command"],
        ["blockdev-add", { driver: "qcow2", "node-name": "gone", file: { driver: "file", filename: join(images.overlay, "..", "missing.qcow2") } }],
      ];
      for (const [command, args] of attempts) await qmp.execute(command, args).catch(() => {});
      await addOverlay(qmp, images);
      await qmp.execute("block-stream", { "job-id": "busy", device: "ov", speed: 1 * MiB });
      await qmp.execute("block-stream", { "job-id": "busy2", device: "ov" }).catch(() => {});
      const gone = qmp.waitFor("JOB_STATUS_CHANGE", { id: "busy", status: "null" });
      await qmp.execute("job-cancel", { id: "busy" });
      await gone;
      await quit(qmp);
    },
  },
];

async function record(scenario: Scenario, outDir: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "vk-record-"));
  try {
    const images = createStreamImages(dir);
    await using qemu = await startQmpQemu({ dir });
    const recorder = recordQmpTranscript(await qemu.connect(), {
      placeholders: { [dir]: "WORK" },
      notes: [`${scenario.name}: ${scenario.note}`, `recorded by scripts/record_qmp.ts with ${qemuVersion()}`],
    });
    const qmp = await QmpClient.connect(recorder.transport);
    await scenario.run(qmp, images);
    await qemu.exited;
    const path = join(outDir, `${scenario.name}.jsonl`);
    writeFileSync(path, recorder.toJsonl());
    console.log(`${path}: ${recorder.lines().length} lines`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function qemuVersion(): string {
  return execFileSync("qemu-system-x86_64", ["--version"], { encoding: "utf8" }).split("\n")[0]!.trim();
}

const outDir = process.argv[2] ?? join(import.meta.dirname ?? ".", "..", "test", "fixtures", "qmp");
mkdirSync(outDir, { recursive: true });
for (const scenario of scenarios) await record(scenario, outDir);
