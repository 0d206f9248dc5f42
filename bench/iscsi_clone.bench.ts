/**
 * Clone of an iSCSI LUN into a `dir` pool through virtkit's userspace initiator, against `qemu-img
 * convert` from `iscsi://` (libiscsi) of the same LUN, in the same run, on a private tgtd on loopback:
 * a 256 MiB LUN with 128 MiB of data (1 MiB of random data, 1 MiB of zeros, alternately). The LUN does
 * not report provisioning, so both read all 256 MiB and keep the zero MiBs as holes in the copy.
 *
 * Two pairs, like for like:
 * 1. the clone job (`pool.volumes.clone()` to `job.wait()`; it ends with `fdatasync`, as libvirt's raw
 *    clone does) against `qemu-img convert -t writeback` (which ends with `fdatasync` too);
 * 2. the copy loop alone (the LUN's volume IO into a raw file, no sync) against plain `qemu-img
 *    convert` (cache mode `unsafe`: never syncs).
 * Rounds are interleaved and each timed run is settled alike (previous output removed, `sync`, the LUN's
 * backing file read once, memory touched; see dir_clone.bench.ts). Needs tgt and qemu-block-extra;
 * prints a note and returns without them.
 *
 * @module
 */
import { execFile } from "node:child_process";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { connect, MiB } from "../mod.ts";
import { copyExtents } from "../core/copy/copy_loop.ts";
import { OPEN_FLAGS } from "../drivers/dir/dir_fs.ts";
import { nodeDirFs, runtimeHoleFinder } from "../drivers/dir/mod.ts";
import { openRawVolumeIO } from "../drivers/dir/raw_volume_io.ts";
import { IscsiPool } from "../drivers/iscsi/iscsi_pool.ts";
import type { VolumeIO } from "../core/volume_io.ts";
import { missingIscsiTools, Tgtd } from "../test/_support/tgtd.ts";

const ROUNDS = 7;
const LUN_BYTES = MiB(256);
const DATA_BYTES = MiB(128);
const TOUCH_BYTES = Math.min(MiB(1536), Math.floor(os.freemem() / 4));

function sh(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(file, args, { maxBuffer: 16 << 20 }, (error, stdout, stderr) => (error ? reject(new Error(`${file} ${args.join(" ")}: ${stderr || error.message}`)) : resolve(stdout))));
}

/** 1 MiB of random data, then 1 MiB of zeros, over the whole LUN. */
async function fillLun(file: string): Promise<void> {
  const handle = await fsp.open(file, "r+");
  const chunk = new Uint8Array(MiB(1));
  for (let at = 0; at < chunk.length; at += 65536) crypto.getRandomValues(chunk.subarray(at, at + 65536));
  for (let i = 0; i < DATA_BYTES / MiB(1); i++) {
    chunk[0] = i & 0xff;
    await handle.write(chunk, 0, chunk.length, i * MiB(2));
  }
  await handle.sync();
  await handle.close();
}

async function settle(lunFile: string, out: string): Promise<void> {
  await fsp.rm(out, { force: true });
  await sh("sync", []);
  await sh("sh", ["-c", 'cat "$0" > /dev/null', lunFile]);
  await sh("dd", ["if=/dev/zero", "of=/dev/null", `bs=${Math.floor(TOUCH_BYTES / MiB(1))}M`, "count=1", "status=none"]);
}

const best = (xs: number[]) => Math.min(...xs);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rate = (ms: number) => `${(LUN_BYTES / MiB(1) / (ms / 1000)).toFixed(0)} MiB/s`;
const line = (label: string, xs: number[]) => `  ${label.padEnd(52)} ${best(xs).toFixed(0).padStart(5)} ms best (median ${median(xs).toFixed(0)}) = ${rate(best(xs))}`;

/**
 * Runs the iSCSI clone benchmark and prints each figure next to its reference, with the throughput ratio.
 *
 * @example
 * ```ts
 * import { run } from "./iscsi_clone.bench.ts";
 * await run();
 * ```
 */
export async function run(): Promise<void> {
  const qemuIscsi = await sh("qemu-img", ["--help"]).then((text) => /\biscsi\b/.test(text), () => false);
  if (missingIscsiTools.length > 0 || !qemuIscsi) {
    console.log(`iscsi clone: skipped (needs ${[...missingIscsiTools, ...(qemuIscsi ? [] : ["qemu-img with iscsi (qemu-block-extra)"])].join(", ")})`);
    return;
  }
  const tgtd = await Tgtd.start({ luns: [{ lun: 1, sizeBytes: LUN_BYTES }] });
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), "virtkit-bench-iscsi-"));
  const conn = await connect("test:///empty");
  try {
    await fillLun(tgtd.lunFile(1));
    const san = await conn.pools.create({ name: "san", type: "iscsi", host: "127.0.0.1", port: tgtd.port, target: tgtd.target });
    const images = await conn.pools.create({ name: "images", type: "dir", path: path.join(root, "images") });
    const lun = await san.volumes.get("unit:0:0:1");
    const url = tgtd.url(1);
    const out = path.join(root, "images", "copy.raw");
    const times = { clone: [] as number[], qemuWriteback: [] as number[], loop: [] as number[], qemuUnsafe: [] as number[] };
    // The same backend the pool runs, opened directly for the loop-alone figure.
    const direct = new IscsiPool({ name: "direct", type: "iscsi", host: "127.0.0.1", port: tgtd.port, target: tgtd.target });
    await direct.start();
    for (let round = 0; round < ROUNDS; round++) {
      await settle(tgtd.lunFile(1), out);
      let start = performance.now();
      await (await images.volumes.clone(lun, { name: "copy.raw" })).wait();
      times.clone.push(performance.now() - start);
      await (await images.volumes.get("copy.raw")).delete();

      await settle(tgtd.lunFile(1), out);
      start = performance.now();
      await sh("qemu-img", ["convert", "-t", "writeback", "-f", "raw", "-O", "raw", url, out]);
      times.qemuWriteback.push(performance.now() - start);

      await settle(tgtd.lunFile(1), out);
      start = performance.now();
      await loopOnce(() => direct.openVolume("unit:0:0:1", { write: false }), out);
      times.loop.push(performance.now() - start);

      await settle(tgtd.lunFile(1), out);
      start = performance.now();
      await sh("qemu-img", ["convert", "-f", "raw", "-O", "raw", url, out]);
      times.qemuUnsafe.push(performance.now() - start);
    }
    // The copies are what they should be: identical to the LUN, and sparse.
    await sh("qemu-img", ["compare", "-q", "-f", "raw", "-F", "raw", out, url]);
    const allocated = (await fsp.stat(out)).blocks * 512;
    console.log(`iscsi clone (256 MiB LUN, 128 MiB data, tgtd on loopback, ${os.tmpdir()}, best of ${ROUNDS} interleaved; ratios from the best; copy allocates ${(allocated / MiB(1)).toFixed(0)} MiB)`);
    console.log(line("virtkit clone job (ends with fdatasync)", times.clone));
    console.log(line("qemu-img convert -t writeback from iscsi://", times.qemuWriteback));
    console.log(`  -> ${(best(times.qemuWriteback) / best(times.clone)).toFixed(2)}x qemu-img's throughput (target >= 1.0x)`);
    console.log(line("virtkit copy loop alone (LUN volume IO -> raw, no sync)", times.loop));
    console.log(line("qemu-img convert from iscsi:// (cache unsafe)", times.qemuUnsafe));
    console.log(`  -> ${(best(times.qemuUnsafe) / best(times.loop)).toFixed(2)}x qemu-img's throughput`);
  } finally {
    await conn.close();
    await tgtd.stop();
    await fsp.rm(root, { recursive: true, force: true });
  }
}

/** The copy loop alone, as the clone job runs it, without the job, the durable target or the final sync. */
async function loopOnce(openLun: () => Promise<VolumeIO>, out: string): Promise<void> {
  const holeFinder = runtimeHoleFinder();
  const file = await nodeDirFs.open(out, OPEN_FLAGS.createNew, 0o600);
  await file.truncate(LUN_BYTES);
  const output = await openRawVolumeIO({ file, write: true, holeFinder, label: "copy", writebackBytes: 0 });
  const input = await openLun();
  try {
    await copyExtents({ source: input, target: output, length: input.capacityBytes, plan: (e) => (e.data && !e.zero ? "copy" : "skip"), zeroChunks: "skip", readAhead: true });
  } finally {
    await input.close();
    await output.close();
  }
}
