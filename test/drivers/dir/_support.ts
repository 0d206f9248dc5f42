/**
 * Shared helpers of the `dir` backend tests: scratch directories, a registry with the backend, and
 * `qemu-img` as the referee (its suites fail under `CI=true` when it is missing, and skip otherwise).
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { StorageBackendDefinition } from "../../../core/storage_backend.ts";
import type { Registry } from "../../../core/registry.ts";
import { createRegistry } from "../../../mod.ts";
import { testDriver } from "../../../drivers/test/mod.ts";
import { dirBackend, type DirFile, type DirFs, nodeDirFs } from "../../../drivers/dir/mod.ts";
import { OPEN_FLAGS } from "../../../drivers/dir/dir_fs.ts";

/** A fresh scratch directory under the OS temp dir. */
export async function scratchDir(prefix = "virtkit-dir-"): Promise<string> {
  return await fsp.realpath(await fsp.mkdtemp(path.join(os.tmpdir(), prefix)));
}

/** Opens an existing file read-write, logging its `fdatasync` calls ("datasync" once each). */
export async function loggedHandle(file: string): Promise<{ handle: DirFile; log: string[] }> {
  const inner = await nodeDirFs.open(file, OPEN_FLAGS.readWrite);
  const log: string[] = [];
  const handle: DirFile = {
    fd: inner.fd,
    read: (...args) => inner.read(...args),
    write: (...args) => inner.write(...args),
    truncate: (size) => inner.truncate(size),
    sync: () => inner.sync(),
    stat: () => inner.stat(),
    datasync: () => (log.push("datasync"), inner.datasync()),
    close: () => inner.close(),
  };
  return { handle, log };
}

/** Removes a scratch directory. */
export async function removeDir(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true });
}

/**
 * A registry with the `test` hypervisor driver and the given `dir` backend (the real one by default):
 * built from an empty registry, so it works the same once the built-ins include `dir` themselves.
 */
export function registryWithDir(backend: StorageBackendDefinition = dirBackend): Registry {
  const registry = createRegistry();
  registry.register(testDriver);
  registry.register(backend);
  return registry;
}

/** Runs a command; resolves with stdout, rejects with stderr. */
export function run(file: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, [...args], { maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(" ")} failed: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

let qemuImg: boolean | undefined;
/** Whether qemu-img is installed; under CI=true a missing one is an error. */
export async function hasQemuImg(): Promise<boolean> {
  if (qemuImg === undefined) {
    qemuImg = await run("qemu-img", ["--version"]).then(() => true, () => false);
    if (!qemuImg && process.env.CI === "true") throw new Error("qemu-img is missing (install qemu-utils): the dir tests need it as referee");
  }
  return qemuImg;
}

/** `qemu-img info --output=json`. */
export async function qemuInfo(file: string): Promise<{ "virtual-size": number; format: string; "backing-filename"?: string; "backing-filename-format"?: string }> {
  return JSON.parse(await run("qemu-img", ["info", "--output=json", "-U", file]));
}

/** `qemu-img map --output=json` reduced to data runs `[offset, length]`. */
export async function qemuDataRuns(file: string, format = "raw"): Promise<Array<[number, number]>> {
  const map = JSON.parse(await run("qemu-img", ["map", "--output=json", "-f", format, file])) as Array<{ start: number; length: number; data: boolean }>;
  const runs: Array<[number, number]> = [];
  for (const m of map) {
    if (!m.data) continue;
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === m.start) last[1] += m.length;
    else runs.push([m.start, m.length]);
  }
  return runs;
}

/** Deterministic non-zero bytes. */
export function pattern(length: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = (x >>> 16) & 0xff | 1;
  }
  return bytes;
}

/** Writes `data` at `offset` of a file (creating it). */
export async function writeAt(file: string, offset: number, data: Uint8Array): Promise<void> {
  const handle = await fsp.open(file, "r+").catch(() => fsp.open(file, "w+"));
  try {
    await handle.write(data, 0, data.byteLength, offset);
  } finally {
    await handle.close();
  }
}

/** Faults a {@link faultyFs} injects; set and clear the fields while a test runs. */
export interface Faults {
  /** `link()` fails with this code. */
  link?: string;
  /** `sync()` of any file fails with this code. */
  sync?: string;
  /** `datasync()` of files whose path matches `path` fails with `code`. */
  datasync?: { code: string; path?: RegExp };
  /** `truncate()` fails with this code. */
  truncate?: string;
  /** Writes to files whose path matches `path` fail with `code` once `bytes` have been written through one handle. */
  write?: { bytes: number; code: string; path?: RegExp };
}

function errno(code: string, call: string): Error {
  return Object.assign(new Error(`${code}: injected failure, ${call}`), { code });
}

/**
 * The real file system with injectable failures (`ENOSPC`, `EIO`), a log of paths that were opened for
 * writing, and a log of every flush (`"datasync <path>"`, `"sync <path>"`, in call order).
 */
export function faultyFs(faults: Faults): DirFs & { writtenPaths: Set<string>; flushes: string[] } {
  const writtenPaths = new Set<string>();
  const flushes: string[] = [];
  // Bytes written through each handle (by write or copyFileRange), so a write fault hits both alike.
  const writes = new WeakMap<DirFile, (length: number) => void>();
  return {
    ...nodeDirFs,
    writtenPaths,
    flushes,
    async open(file, flags, mode) {
      const handle = await nodeDirFs.open(file, flags, mode);
      const writing = (flags & (fsConstants.O_RDWR | fsConstants.O_WRONLY)) !== 0;
      if (writing) writtenPaths.add(file);
      let written = 0;
      const count = (length: number) => {
        const w = faults.write;
        if (w && (!w.path || w.path.test(file)) && written + length > w.bytes) throw errno(w.code, `write to ${file}`);
        written += length;
      };
      const wrapped: DirFile = {
        fd: handle.fd,
        read: (...args) => handle.read(...args),
        async write(buffer, offset, length, position) {
          count(length);
          return await handle.write(buffer, offset, length, position);
        },
        async truncate(size) {
          if (faults.truncate) throw errno(faults.truncate, `truncate ${file}`);
          await handle.truncate(size);
        },
        async datasync() {
          flushes.push(`datasync ${file}`);
          const d = faults.datasync;
          if (d && (!d.path || d.path.test(file))) throw errno(d.code, `fdatasync ${file}`);
          await handle.datasync();
        },
        async sync() {
          flushes.push(`sync ${file}`);
          if (faults.sync) throw errno(faults.sync, `sync ${file}`);
          await handle.sync();
        },
        stat: () => handle.stat(),
        close: () => handle.close(),
      };
      writes.set(wrapped, count);
      return wrapped;
    },
    async copyFileRange(from, fromPosition, to, toPosition, length) {
      writes.get(to)?.(length);
      return await nodeDirFs.copyFileRange!(from, fromPosition, to, toPosition, length);
    },
    async link(existing, created) {
      if (faults.link) throw errno(faults.link, `link ${created}`);
      await nodeDirFs.link(existing, created);
    },
  };
}

/** SHA-256 of a file, hex (to prove a source was never touched). */
export async function fileHash(file: string): Promise<string> {
  return createHash("sha256").update(await fsp.readFile(file)).digest("hex");
}
