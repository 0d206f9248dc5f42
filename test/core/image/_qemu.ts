/** Test helpers: a node:fs-backed PositionalFile and qemu-img plumbing shared by the image tests. */
import { open } from "node:fs/promises";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import process from "node:process";
import type { PositionalFile } from "../../../core/image/positional_file.ts";
import { positionalFileOf } from "../../../drivers/dir/positional_handle.ts";
import type { RawExtentsHook } from "../../../core/image/layer.ts";
import { type ImageIO, openImage, type OpenImageOptions } from "../../../core/image/open_image.ts";
import type { VolumeIO } from "../../../core/volume_io.ts";

/** Opens a host file as a PositionalFile (the dir backend's adaptor over a FileHandle). */
export async function openNodeFile(path: string, write = false): Promise<PositionalFile> {
  return positionalFileOf(await open(path, write ? "r+" : "r"));
}

/** Whether qemu-img is installed. */
export const haveQemuImg = spawnSync("qemu-img", ["--version"]).status === 0;
/** Skip qemu-img tests when it is missing, except under CI where they must run. */
export const skipWithoutQemu = !haveQemuImg && process.env.CI !== "true";

/** Runs qemu-img (or qemu-io) and returns stdout; throws with stderr on failure. */
export function qemu(tool: "qemu-img" | "qemu-io", ...args: string[]): string {
  return execFileSync(tool, args, { encoding: "utf8", maxBuffer: 256 << 20 });
}

/** Runs `qemu-img check` and returns its exit code and output (0 clean, 3 leaks only, 2 corruption). */
export function qemuCheck(path: string): { status: number; output: string } {
  const result = spawnSync("qemu-img", ["check", path], { encoding: "utf8" });
  return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}

/** A fresh temp directory (deleted by the returned cleanup). */
export function tempDir(prefix: string): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), `virtkit-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** One `qemu-img map --output=json` entry reduced to what extents compare. */
export interface MapRun {
  offset: number;
  length: number;
  depth: number;
  data: boolean;
  zero: boolean;
}

/** Merges adjacent runs with equal depth, data and zero. */
export function mergeRuns(runs: MapRun[]): MapRun[] {
  const out: MapRun[] = [];
  for (const run of runs) {
    const last = out[out.length - 1];
    if (last && last.depth === run.depth && last.data === run.data && last.zero === run.zero && last.offset + last.length === run.offset) {
      last.length += run.length;
    } else out.push({ ...run });
  }
  return out;
}

/** `qemu-img map --output=json`, merged. */
export function qemuMap(path: string): MapRun[] {
  const entries = JSON.parse(qemu("qemu-img", "map", "--output=json", path)) as Array<{ start: number; length: number; depth: number; data: boolean; zero: boolean }>;
  return mergeRuns(entries.map((e) => ({ offset: e.start, length: e.length, depth: e.depth, data: e.data, zero: e.zero })));
}

/** A raw hole finder for tests, from qemu's own view of the raw file (the dir backend uses SEEK_HOLE). */
export function rawExtentsFromQemu(path: string): RawExtentsHook {
  let map: MapRun[] | undefined;
  return (offset, length) =>
    Promise.resolve(
      (map ??= qemuMap(path))
        .filter((run) => run.offset + run.length > offset && run.offset < offset + length)
        .map((run) => ({ offset: run.offset, length: run.length, data: run.data })),
    );
}

/** Opens an image chain from host files; raw layers get their holes from qemu. */
export async function openHostImage(path: string, writable = false, extra: Partial<OpenImageOptions> = {}): Promise<ImageIO> {
  return openImage(await openNodeFile(path, writable), {
    name: path,
    key: path,
    writable,
    rawExtents: rawExtentsFromQemu(path),
    openBacking: async (ref) => {
      const full = isAbsolute(ref.path) ? ref.path : join(dirname(path), ref.path);
      return { file: await openNodeFile(full), key: full, rawExtents: rawExtentsFromQemu(full) };
    },
    ...extra,
  });
}

/** Collects extents of a whole image. */
export async function allExtents(io: VolumeIO): Promise<MapRun[]> {
  const out: MapRun[] = [];
  for await (const e of io.extents(0, io.capacityBytes)) out.push({ offset: e.offset, length: e.length, depth: e.depth, data: e.data, zero: e.zero });
  return mergeRuns(out);
}

/** Reads the whole guest-visible content. */
export async function readAll(io: VolumeIO): Promise<Uint8Array> {
  const out = new Uint8Array(io.capacityBytes);
  expectRead(await io.read(0, out), out.byteLength);
  return out;
}

function expectRead(got: number, want: number): void {
  if (got !== want) throw new Error(`short read: ${got} of ${want}`);
}

/** `qemu-img convert -O raw` of an image, as bytes. */
export function qemuFlatten(path: string, dir: string): Uint8Array {
  const out = join(dir, `flat-${Math.random().toString(36).slice(2)}.raw`);
  qemu("qemu-img", "convert", "-O", "raw", path, out);
  const bytes = new Uint8Array(readFileSync(out));
  rmSync(out);
  return bytes;
}

/** Index of the first differing byte, or -1. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.byteLength !== b.byteLength) return Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Writes deterministic pseudo-random bytes (incompressible) into a new file. */
export function randomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Writes bytes to a host file. */
export function writeHostFile(path: string, bytes: Uint8Array): void {
  writeFileSync(path, bytes);
}
