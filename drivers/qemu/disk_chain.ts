/**
 * Disks of a `qemu:` domain: where the top image is (a host path, or a pool volume resolved through the
 * connection's storage), its backing chain (read from the image headers by `qemu-img info
 * --backing-chain`), and the QEMU node names each layer gets, so every node of the `-blockdev` graph is
 * named and block jobs can address the top and the base by name.
 *
 * @module
 */
import type { BackingLayer, DiskConfig, DiskInfo } from "../../core/domain.ts";
import type { StorageAccess } from "../../core/driver.ts";
import { CommandError, type VirtError } from "../../core/errors.ts";
import { type CommandRunner, createNodeCommandRunner, missingProgram as missingProgramOf } from "../command_runner.ts";
import { layerLocation } from "./blockdev_source.ts";
import type { RunDisk } from "./state_store.ts";

/** One image of a disk's chain with its QEMU node names. */
export interface ImageLayer {
  /** Host path of the image. */
  readonly path: string;
  /** Image format (`"qcow2"`, `"raw"`). */
  readonly format: string;
  /** Virtual size in bytes. */
  readonly virtualBytes: number;
  /** Node name of the format layer. */
  readonly node: string;
  /** Node name of the protocol (`file`) layer under it. */
  readonly fileNode: string;
}

interface QemuImgInfo {
  readonly filename: string;
  readonly format: string;
  readonly "virtual-size": number;
}

/** The programs the driver runs, and the package that brings each on Debian. */
export const PACKAGES: Readonly<Record<string, string>> = Object.freeze({
  "qemu-system-x86_64": "qemu-system-x86",
  "qemu-img": "qemu-utils",
});

/**
 * The qemu driver's default way to run `qemu-img`: `execFile`, with errors naming the driver and the
 * Debian package of a missing program.
 *
 * @example
 * ```ts
 * import { qemuCommandRunner } from "./disk_chain.ts";
 * const error = await qemuCommandRunner.run(["qemu-img-that-is-not-there"]).catch((e) => e);
 * if (error.driver !== "qemu" || error.code !== "connect-failed") throw new Error("unexpected");
 * ```
 */
export const qemuCommandRunner: CommandRunner = createNodeCommandRunner({ driver: "qemu", packages: PACKAGES });

/**
 * The error for a qemu program that is not installed.
 *
 * @param program Its name.
 * @param cause The spawn error.
 * @returns A `VirtError` (`connect-failed`) naming the package to install.
 * @example
 * ```ts
 * import { missingProgram } from "./disk_chain.ts";
 * if (!missingProgram("qemu-img").message.includes("apt-get install qemu-utils")) throw new Error("unexpected");
 * ```
 */
export function missingProgram(program: string, cause?: unknown): VirtError {
  return missingProgramOf(program, { driver: "qemu", packages: PACKAGES }, cause);
}

/** Options of {@linkcode readChain} and {@linkcode resolveDisks}. */
export interface ChainOptions {
  /** Runs `qemu-img` (default {@linkcode qemuCommandRunner}). */
  readonly runner?: CommandRunner;
  /** Aborts the run. */
  readonly signal?: AbortSignal;
}

/** Node names must start with a letter and hold letters, digits, `-`, `.` and `_` (at most 31 bytes). */
function nodeBase(target: string, index: number): string {
  return /^[A-Za-z][A-Za-z0-9_.-]{0,20}$/.test(target) ? target : `disk${index}`;
}

/**
 * Reads an image's chain from its headers.
 *
 * @param path Top image.
 * @param format Its format when known (probing is avoided then).
 * @param nodeName Base of the node names (`"vda"` gives `vda-0`, `vda-0-file`, `vda-1`, ...).
 * @param options The runner and the signal.
 * @returns The layers, top first.
 * @example
 * ```ts
 * import { readChain } from "./disk_chain.ts";
 * import { execFileSync } from "node:child_process";
 * import { mkdtempSync } from "node:fs";
 * const dir = mkdtempSync("/tmp/virtkit-doc-");
 * execFileSync("qemu-img", ["create", "-q", "-f", "raw", `${dir}/b.raw`, "1M"]);
 * execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", `${dir}/b.raw`, "-F", "raw", `${dir}/t.qcow2`]);
 * const chain = await readChain(`${dir}/t.qcow2`, "qcow2", "vda");
 * if (chain.map((l) => l.node).join() !== "vda-0,vda-1" || chain[1]!.format !== "raw") throw new Error("unexpected");
 * ```
 */
export async function readChain(path: string, format: string | undefined, nodeName: string, options: ChainOptions = {}): Promise<ImageLayer[]> {
  const argv = ["qemu-img", "info", "--output=json", "--backing-chain", "-U", ...(format ? ["-f", format] : []), path];
  const runner = options.runner ?? qemuCommandRunner;
  const infos = JSON.parse(await runner.run(argv, options.signal ? { signal: options.signal } : {})) as QemuImgInfo[];
  return infos.map((info, i) => ({
    path: layerLocation(info.filename),
    format: info.format,
    virtualBytes: info["virtual-size"],
    node: `${nodeName}-${i}`,
    fileNode: `${nodeName}-${i}-file`,
  }));
}

/**
 * Resolves every disk of a domain to its image chain.
 *
 * @param disks The domain's disks.
 * @param storage The connection's pools (for disks on pool volumes).
 * @param options The runner and the signal.
 * @returns One entry per disk, in order.
 * @throws {NotFoundError} For a pool or volume that does not exist (from the storage layer).
 * @example
 * ```ts
 * import { resolveDisks } from "./disk_chain.ts";
 * import { execFileSync } from "node:child_process";
 * import { mkdtempSync } from "node:fs";
 * const dir = mkdtempSync("/tmp/virtkit-doc-");
 * execFileSync("qemu-img", ["create", "-q", "-f", "raw", `${dir}/a.raw`, "1M"]);
 * const storage = {} as import("../../core/driver.ts").StorageAccess; // host paths need no pools
 * const [disk] = await resolveDisks([{ target: "vda", path: `${dir}/a.raw` }], storage);
 * if (disk?.layers.length !== 1 || disk.layers[0]!.node !== "vda-0") throw new Error("unexpected");
 * ```
 */
export async function resolveDisks(disks: readonly DiskConfig[], storage: StorageAccess, options: ChainOptions = {}): Promise<RunDisk[]> {
  const { signal } = options;
  const out: RunDisk[] = [];
  for (const [index, disk] of disks.entries()) {
    let path = disk.path;
    if (disk.volume) path = (await (await storage.backend(disk.volume.pool)).lookupVolume(disk.volume.name, { signal })).path;
    const layers = await readChain(path!, disk.format, nodeBase(disk.target, index), options);
    out.push({ target: disk.target, layers, ...(disk.volume ? { volume: { pool: disk.volume.pool, name: disk.volume.name } } : {}) });
  }
  return out;
}

/**
 * A disk as `dom.disks()` reports it.
 *
 * @param disk A resolved disk.
 * @returns Its public description.
 * @example
 * ```ts
 * import { diskInfo } from "./disk_chain.ts";
 * const info = diskInfo({ target: "vda", layers: [
 *   { path: "/i/t.qcow2", format: "qcow2", virtualBytes: 1, node: "vda-0", fileNode: "vda-0-file" },
 *   { path: "/i/b.raw", format: "raw", virtualBytes: 1, node: "vda-1", fileNode: "vda-1-file" },
 * ] });
 * if (info.path !== "/i/t.qcow2" || info.backingChain[0]?.path !== "/i/b.raw") throw new Error("unexpected");
 * ```
 */
export function diskInfo(disk: RunDisk): DiskInfo {
  const [top, ...rest] = disk.layers;
  const backingChain: BackingLayer[] = rest.map((l) => ({ path: l.path, format: l.format }));
  return { target: disk.target, path: top!.path, format: top!.format, backingChain, ...(disk.volume ? { volume: disk.volume } : {}) };
}
