/**
 * A download whose consumer goes away mid-way, against a real libvirtd 9.0: the bytes piped into a
 * process that exits early (`head -c`, the pipe then fails with EPIPE), and a BYOB reader that
 * cancels. Each must end the job aborted (a typed JobError), abort libvirt's stream and leave the
 * connection as it was: the next download on it is whole and byte for byte the volume. (Whether
 * libvirtd has filled the stream's high-water mark by then depends on timing; the case of a reader
 * going away from a paused socket is pinned down against a fake peer in rpc/receive_slabs.test.ts.)
 */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, JobError, MiB } from "../../../mod.ts";
import type { Connection } from "../../../core/connection.ts";
import type { Volume } from "../../../core/volume.ts";
import { type RunningLibvirtd, skipLibvirtd, startLibvirtd } from "../../_support/libvirtd.ts";

const SIZE = MiB(48);

describe.skipIf(skipLibvirtd)("remote download: a consumer that goes away", () => {
  let daemon: RunningLibvirtd;
  let conn: Connection;
  let vol: Volume;
  beforeAll(async () => {
    daemon = await startLibvirtd({ driver: "qemu" });
    conn = await connect(daemon.uri("qemu"));
    const pool = await conn.pools.create({ name: "p", type: "dir", path: `${daemon.mkdir("pools")}/p` });
    vol = await pool.volumes.create({ name: "big.raw", capacityBytes: SIZE, format: "raw" });
    execFileSync("qemu-io", ["-f", "raw", "-c", `write -q -P 7 0 ${SIZE}`, vol.path]);
  }, 60_000);
  afterAll(async () => {
    await conn?.close().catch(() => {});
    await daemon?.stop();
  });

  async function downloadWhole(): Promise<void> {
    const job = await vol.download();
    const bytes = Buffer.from(await new Response(job.readable).arrayBuffer());
    await job.wait();
    expect(bytes.length).toBe(SIZE);
    expect(bytes.equals(readFileSync(vol.path))).toBe(true);
  }

  it("ends the job aborted when the pipe it is written to breaks (EPIPE), and the connection goes on", async () => {
    const job = await vol.download();
    const head = spawn("head", ["-c", String(MiB(1))], { stdio: ["pipe", "ignore", "inherit"] });
    const exited = new Promise((resolve) => head.once("exit", resolve));
    const piped = await pipeline(Readable.fromWeb(job.readable as import("node:stream/web").ReadableStream), head.stdin).then(() => undefined, (e: unknown) => e);
    await exited;
    // The write fails with EPIPE, or Node notices the pipe's close first.
    expect(["EPIPE", "ERR_STREAM_PREMATURE_CLOSE"]).toContain((piped as { code?: string }).code);
    const ended = await job.wait().then(() => undefined, (e: unknown) => e);
    expect(ended).toBeInstanceOf(JobError);
    expect((ended as JobError).info.state).toBe("aborted");
    await downloadWhole();
  });

  it("ends the job aborted when the reader cancels with data held, and the connection goes on", async () => {
    const job = await vol.download();
    const reader = job.readable.getReader({ mode: "byob" });
    const { value } = await reader.read(new Uint8Array(MiB(1)));
    expect(value!.length).toBe(MiB(1));
    expect(value!.every((byte) => byte === 7)).toBe(true);
    await reader.cancel(new Error("the consumer went away"));
    const ended = await job.wait().then(() => undefined, (e: unknown) => e);
    expect((ended as JobError).info.state).toBe("aborted");
    expect((await job.info()).state).toBe("aborted");
    await downloadWhole();
  });
});
