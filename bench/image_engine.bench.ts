/**
 * The image engine against qemu-img, same run, same files (design §10, issue "image engine"):
 * (1) offline pull of a 1 GiB qcow2 overlay over a raw base holding 512 MiB of data (1 MiB data, 1 MiB
 * hole, alternating) through `openImage` + `copyExtents` + `setBacking(undefined)`, against
 * `qemu-img rebase -b ""` (safe mode) on an identical overlay; times, ratio and both allocations;
 * (2) reading a depth-3 chain end to end into a sparse raw file, against `qemu-img convert -O raw`;
 * (3) a pull capped at 64 MiB/s: elapsed against bytes/cap.
 * Temp files live under `os.tmpdir()` and are deleted. The raw base's holes come from the `dir`
 * backend's hole finder (`lseek` through Deno's FFI or the Node addon) when the runtime has one;
 * otherwise the base is read whole and all-zero chunks are skipped.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createRealClock } from "../core/clock.ts";
import { copyExtents } from "../core/copy/copy_loop.ts";
import { RateLimiter } from "../core/copy/rate_limiter.ts";
import { openImage } from "../core/image/open_image.ts";
import type { PositionalFile } from "../core/image/positional_file.ts";
import type { RawExtentsHook } from "../core/image/layer.ts";
import type { VolumeIO } from "../core/volume_io.ts";
import { type HoleFinder, runtimeHoleFinder } from "../drivers/dir/mod.ts";

const MiB = 1024 * 1024;
const ROUNDS = 3;
const GiB = 1024 * MiB;

async function nodeFile(file: string, write: boolean): Promise<PositionalFile & { fd: number }> {
  const handle = await open(file, write ? "r+" : "r");
  return {
    fd: handle.fd,
    async read(offset, target) {
      let done = 0;
      while (done < target.byteLength) {
        const { bytesRead } = await handle.read(target, done, target.byteLength - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done;
    },
    async write(offset, data) {
      for (let done = 0; done < data.byteLength; ) done += (await handle.write(data, done, data.byteLength - done, offset + done)).bytesWritten;
    },
    size: async () => (await handle.stat()).size,
    truncate: (size) => handle.truncate(size),
    // fdatasync, as QEMU flushes (file size changes are included; timestamps are not needed).
    flush: () => handle.datasync(),
    close: () => handle.close(),
  };
}

const sh = (...argv: string[]) => execFileSync(argv[0]!, argv.slice(1), { encoding: "utf8", maxBuffer: 64 * MiB });
const actualSize = (file: string) => (JSON.parse(sh("qemu-img", "info", "--output=json", file)) as { "actual-size": number })["actual-size"];
const fmt = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

/** A raw layer's holes from `lseek(SEEK_DATA/SEEK_HOLE)`, as the `dir` backend finds them. */
function holeHook(fd: number, finder: HoleFinder): RawExtentsHook {
  return (offset, length) => {
    const out: Array<{ offset: number; length: number; data: boolean }> = [];
    const end = offset + length;
    for (let at = offset; at < end; ) {
      const data = Math.min(finder.nextData(fd, at) ?? end, end);
      if (data > at) {
        out.push({ offset: at, length: data - at, data: false });
        at = data;
        continue;
      }
      const hole = Math.min(finder.nextHole(fd, at), end);
      out.push({ offset: at, length: hole - at, data: true });
      at = hole;
    }
    return Promise.resolve(out);
  };
}

const finder = runtimeHoleFinder();

async function openChain(top: string, writable: boolean): Promise<VolumeIO> {
  return openImage(await nodeFile(top, writable), {
    name: top,
    key: top,
    writable,
    openBacking: async (ref) => {
      const full = path.resolve(path.dirname(top), ref.path);
      const file = await nodeFile(full, false);
      return { file, key: full, ...(finder ? { rawExtents: holeHook(file.fd, finder) } : {}) };
    },
  });
}

/** Pulls the chain of `top` into it, then drops the backing; returns seconds in all and of the copy. */
async function pull(top: string, limiter?: RateLimiter): Promise<{ total: number; copy: number }> {
  const started = performance.now();
  const io = await openChain(top, true);
  const copyStarted = performance.now();
  await copyExtents({
    source: io,
    target: io,
    length: io.capacityBytes,
    plan: (e) => (e.depth === 0 ? "skip" : e.data && !e.zero ? "copy" : "skip"),
    zeroChunks: "skip",
    ...(limiter ? { limiter } : {}),
  });
  const copy = (performance.now() - copyStarted) / 1000;
  await io.flush();
  await io.setBacking!(undefined);
  await io.flush();
  await io.close();
  return { total: (performance.now() - started) / 1000, copy };
}

/** Writes a raw file of `sizeBytes` with 1 MiB of patterned data every other MiB (up to `dataBytes`). */
async function makeBase(file: string, sizeBytes: number, dataBytes: number): Promise<void> {
  writeFileSync(file, "");
  const f = await nodeFile(file, true);
  await f.truncate(sizeBytes);
  const chunk = new Uint8Array(MiB);
  for (let at = 0, n = 0; at < sizeBytes && n * MiB < dataBytes; at += 2 * MiB, n++) {
    for (let i = 0; i < chunk.length; i += 4096) chunk.fill((n + i / 4096) & 0xff || 1, i, i + 4096);
    await f.write(at, chunk);
  }
  await f.close();
}

/** Runs the image engine benchmarks (needs qemu-img). */
export async function run(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "virtkit-image-bench-"));
  try {
    try {
      sh("qemu-img", "--version");
    } catch {
      console.log("image engine: qemu-img not installed, skipped");
      return;
    }
    const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ? "Deno" : "Node";
    console.log(`image engine on ${runtime}; raw holes: ${finder ? `found with ${finder.name}` : "unknown (read and skipped as zeros)"}`);
    // (1) Offline pull vs qemu-img rebase -b "" (safe mode).
    const base = path.join(dir, "base.raw");
    await makeBase(base, GiB, 512 * MiB);
    const ours = path.join(dir, "ours.qcow2");
    const theirs = path.join(dir, "theirs.qcow2");
    // Best of ROUNDS, alternating who goes first: the machines are shared and fsync times vary a lot.
    let engineSeconds = Infinity;
    let qemuSeconds = Infinity;
    for (let round = 0; round < ROUNDS; round++) {
      for (const top of [ours, theirs]) sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", top, "1G");
      const runQemu = () => {
        const started = performance.now();
        sh("qemu-img", "rebase", "-b", "", theirs);
        qemuSeconds = Math.min(qemuSeconds, (performance.now() - started) / 1000);
      };
      if (round % 2 === 1) runQemu();
      engineSeconds = Math.min(engineSeconds, (await pull(ours)).total);
      if (round % 2 === 0) runQemu();
    }
    const same = sh("qemu-img", "compare", "-q", ours, theirs) === "";
    console.log(`offline pull, 1 GiB qcow2 over a raw base with 512 MiB of data (1 MiB runs), best of ${ROUNDS}`);
    console.log(`  engine (openImage + copyExtents + setBacking) ${engineSeconds.toFixed(3)} s   qemu-img rebase -b "" ${qemuSeconds.toFixed(3)} s` +
      `   engine/qemu ${(engineSeconds / qemuSeconds).toFixed(2)}x`);
    console.log(`  allocation (actual-size): engine ${fmt(actualSize(ours))}   qemu-img ${fmt(actualSize(theirs))}   identical content: ${same}`);

    // (2) Depth-3 chain read end to end vs qemu-img convert -O raw.
    const l1 = path.join(dir, "l1.qcow2");
    const l2 = path.join(dir, "l2.qcow2");
    const l3 = path.join(dir, "l3.qcow2");
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", l1, "1G");
    sh("qemu-io", "-c", "write -P 0x11 64M 128M", l1);
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", "l1.qcow2", "-F", "qcow2", l2, "1G");
    sh("qemu-io", "-c", "write -P 0x22 512M 128M", "-c", "write -z 100M 32M", l2);
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", "l2.qcow2", "-F", "qcow2", l3, "1G");
    sh("qemu-io", "-c", "write -P 0x33 900M 64M", l3);
    const outOurs = path.join(dir, "chain-ours.raw");
    const outQemu = path.join(dir, "chain-qemu.raw");
    let readSeconds = Infinity;
    let convertSeconds = Infinity;
    for (let round = 0; round < ROUNDS; round++) {
      let started = performance.now();
      const source = await openChain(l3, false);
      writeFileSync(outOurs, "");
      const outFile = await nodeFile(outOurs, true);
      await outFile.truncate(source.capacityBytes);
      const target = await openImage(outFile, { format: "raw", writable: true });
      await copyExtents({ source, target, length: source.capacityBytes, plan: (e) => (e.data && !e.zero ? "copy" : "skip"), zeroChunks: "skip" });
      await source.close();
      await target.close();
      readSeconds = Math.min(readSeconds, (performance.now() - started) / 1000);
      rmSync(outQemu, { force: true });
      started = performance.now();
      sh("qemu-img", "convert", "-O", "raw", l3, outQemu);
      convertSeconds = Math.min(convertSeconds, (performance.now() - started) / 1000);
    }
    const equal = sh("qemu-img", "compare", "-q", "-f", "raw", "-F", "raw", outOurs, outQemu) === "";
    console.log(`reading a depth-3 chain (raw base + 3 qcow2 layers, 1 GiB) into a sparse raw file, best of ${ROUNDS}`);
    console.log(`  engine ${readSeconds.toFixed(3)} s (${(GiB / MiB / readSeconds).toFixed(0)} MiB/s)   qemu-img convert -O raw ${convertSeconds.toFixed(3)} s` +
      `   engine/qemu ${(readSeconds / convertSeconds).toFixed(2)}x   identical: ${equal}`);

    // (3) Capped pull at 64 MiB/s over 128 MiB of data.
    const smallBase = path.join(dir, "small.raw");
    await makeBase(smallBase, 256 * MiB, 128 * MiB);
    const capped = path.join(dir, "capped.qcow2");
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", "small.raw", "-F", "raw", capped, "256M");
    const cap = 64 * MiB;
    const limiter = new RateLimiter({ bytesPerSecond: cap, clock: createRealClock() });
    const cappedSeconds = await pull(capped, limiter);
    // The copy loop takes tokens for copied extents only: the data, or all of it when holes are unknown.
    const expected = ((finder ? 128 : 256) * MiB) / cap;
    console.log(`capped pull at 64 MiB/s of a 256 MiB raw-backed overlay with 128 MiB of data`);
    console.log(`  copy phase ${cappedSeconds.copy.toFixed(3)} s   bytes/cap ${expected.toFixed(3)} s   ratio ${(cappedSeconds.copy / expected).toFixed(3)}` +
      `   (whole pull with open, final fsync and header change ${cappedSeconds.total.toFixed(3)} s)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
