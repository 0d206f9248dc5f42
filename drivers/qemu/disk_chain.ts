/**
 * Disks of a `qemu:` domain: where the top image is (a host path, or a pool volume resolved through the
 * connection's storage), its backing chain (read from the image headers: by the image engine for local
 * raw and qcow2 chains, see {@linkcode readHeaderChain}, else by `qemu-img info --backing-chain`), and
 * the QEMU node names each layer gets, so every node of the `-blockdev` graph is
 * named and block jobs can address the top and the base by name.
 *
 * @module
 */
import type { BackingLayer, DiskConfig, DiskInfo } from "../../core/domain.ts";
import type { StorageAccess } from "../../core/storage_backend.ts";
import { CommandError, ConnectError, type VirtError } from "../../core/errors.ts";
import type { IscsiChapAuth } from "../../core/storage_pool.ts";
import { type CommandRunner, createNodeCommandRunner, missingProgram as missingProgramOf } from "../command_runner.ts";
import { parseIscsiUrl } from "../iscsi/lun_names.ts";
import { assertOneWayChap, iscsiOptions, type LayerAuth, layerLocation } from "./blockdev_source.ts";
import { readHeaderChain } from "./header_chain.ts";
import { secretObjectArg, withSecretFiles } from "./secret_file.ts";
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
  /** For a CHAP-protected LUN: the account, and the QEMU secret object that holds its password. */
  readonly auth?: LayerAuth;
}

interface QemuImgInfo {
  readonly filename: string;
  readonly format: string;
  readonly "virtual-size": number;
  readonly "full-backing-filename"?: string;
  readonly "backing-filename"?: string;
  readonly "backing-filename-format"?: string;
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
  /**
   * The CHAP account of an `iscsi://` layer (from the pool holding the LUN), if it needs one. With it, a
   * chain that `qemu-img info --backing-chain` cannot read (it has no way to hand a backing its
   * credentials) is read one layer at a time, a CHAP layer opened with `--object secret` and `--image-opts`.
   */
  readonly authOf?: (location: string) => Promise<IscsiChapAuth | undefined>;
  /** Receives the password of every CHAP layer by its secret object's id (the launch writes them for QEMU). */
  readonly secrets?: Map<string, string>;
}

/** Node names must start with a letter and hold letters, digits, `-`, `.` and `_` (at most 31 bytes). */
function nodeBase(target: string, index: number): string {
  return /^[A-Za-z][A-Za-z0-9_.-]{0,20}$/.test(target) ? target : `disk${index}`;
}

/** A chain longer than this is a loop (libvirt stops at 200; QEMU's own limit on backing depth is lower in practice). */
const MAX_CHAIN = 64;

/**
 * Reads an image's chain from its headers: a chain of local raw and qcow2 images straight from them
 * (no `qemu-img` run), any other through `qemu-img info` run by the `runner`.
 *
 * @param path Top image.
 * @param format Its format when known (probing is avoided then).
 * @param nodeName Base of the node names (`"vda"` gives `vda-0`, `vda-0-file`, `vda-1`, ...).
 * @param options The runner, the signal, and CHAP accounts of LUN layers.
 * @returns The layers, top first.
 * @throws {NotFoundError} When a backing file of a local chain does not exist (naming it).
 * @throws {ConnectError} When the target refuses a LUN layer's CHAP account.
 * @throws {UnsupportedError} For a LUN layer whose pool asks for mutual CHAP (QEMU does one-way only).
 * @example
 * ```ts
 * import { readChain } from "./disk_chain.ts";
 * import { execFileSync } from "node:child_process";
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const dir = mkdtempSync(join(tmpdir(), "virtkit-doc-"));
 * try {
 *   execFileSync("qemu-img", ["create", "-q", "-f", "raw", `${dir}/b.raw`, "1M"]);
 *   execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", `${dir}/b.raw`, "-F", "raw", `${dir}/t.qcow2`]);
 *   const chain = await readChain(`${dir}/t.qcow2`, "qcow2", "vda");
 *   if (chain.map((l) => l.node).join() !== "vda-0,vda-1" || chain[1]!.format !== "raw") throw new Error("unexpected");
 *   const walked = await readChain(`${dir}/t.qcow2`, "qcow2", "vda", { authOf: async () => undefined });
 *   if (JSON.stringify(walked) !== JSON.stringify(chain)) throw new Error("unexpected");
 * } finally {
 *   rmSync(dir, { recursive: true, force: true });
 * }
 * ```
 */
export async function readChain(path: string, format: string | undefined, nodeName: string, options: ChainOptions = {}): Promise<ImageLayer[]> {
  const runner = options.runner ?? qemuCommandRunner;
  const call = options.signal ? { signal: options.signal } : {};
  const layer = (info: QemuImgInfo, i: number): ImageLayer => ({
    path: layerLocation(info.filename),
    format: info.format,
    virtualBytes: info["virtual-size"],
    node: `${nodeName}-${i}`,
    fileNode: `${nodeName}-${i}-file`,
  });
  options.signal?.throwIfAborted();
  const local = await readHeaderChain(path, format, MAX_CHAIN);
  if (local) return local.map((l, i) => ({ path: l.path, format: l.format, virtualBytes: l.virtualBytes, node: `${nodeName}-${i}`, fileNode: `${nodeName}-${i}-file` }));
  const whole = async () => {
    const argv = ["qemu-img", "info", "--output=json", "--backing-chain", "-U", ...(format ? ["-f", format] : []), path];
    return (JSON.parse(await runner.run(argv, call)) as QemuImgInfo[]).map(layer);
  };
  if (!options.authOf) return await whole();
  // One `--backing-chain` run reads every chain without a CHAP layer, as before. It cannot open a CHAP
  // LUN (no way to hand a backing its secret), so when it fails the chain is walked a layer at a time,
  // which then opens CHAP layers with their secrets or fails with the layer's own error.
  if (!path.startsWith("iscsi://") || (await options.authOf(path)) === undefined) {
    try {
      return await whole();
    } catch (error) {
      if (!(error instanceof CommandError)) throw error;
    }
  }
  const layers: ImageLayer[] = [];
  let location: string | undefined = path;
  let fmt = format;
  while (location !== undefined) {
    if (layers.length >= MAX_CHAIN) throw new RangeError(`Cannot read the backing chain of "${path}": it is longer than ${MAX_CHAIN} images (a loop?)`);
    const i = layers.length;
    const chap = location.startsWith("iscsi://") ? await options.authOf(location) : undefined;
    assertOneWayChap(location, chap);
    const auth = chap ? { username: chap.username, secret: `${nodeName}-${i}-secret` } : undefined;
    const info = await layerInfo(runner, { location, format: fmt, auth, password: chap?.password }, call);
    if (auth) options.secrets?.set(auth.secret, chap!.password);
    // A CHAP layer's filename is a json: form naming the secret; the layer is still known by its URL.
    layers.push({ ...layer(info, i), ...(auth ? { path: location, auth } : {}) });
    const backing = info["full-backing-filename"] ?? info["backing-filename"];
    location = backing === undefined ? undefined : layerLocation(backing);
    fmt = info["backing-filename-format"];
  }
  return layers;
}

/** `qemu-img info` of one layer (no backing opened); a CHAP LUN with its secret in a 0600 file. */
async function layerInfo(
  runner: CommandRunner,
  at: { location: string; format: string | undefined; auth: LayerAuth | undefined; password: string | undefined },
  call: { signal?: AbortSignal },
): Promise<QemuImgInfo> {
  const head = ["qemu-img", "info", "--output=json", "-U"];
  const lun = at.auth ? parseIscsiUrl(at.location) : undefined;
  if (!at.auth || !lun) return JSON.parse(await runner.run([...head, ...(at.format ? ["-f", at.format] : []), at.location], call)) as QemuImgInfo;
  const file = Object.entries(iscsiOptions(lun, at.location, at.auth)).map(([k, v]) => `file.${k}=${String(v).replaceAll(",", ",,")}`);
  const opts = [...(at.format ? [`driver=${at.format}`] : []), ...file].join(",");
  return await withSecretFiles(new Map([[at.auth.secret, at.password!]]), async (files) => {
    const argv = [...head, "--object", secretObjectArg(at.auth!.secret, files.get(at.auth!.secret)!), "--image-opts", opts];
    try {
      return JSON.parse(await runner.run(argv, call)) as QemuImgInfo;
    } catch (error) {
      if (error instanceof CommandError && /Authentication failure/i.test(error.stderr)) {
        throw new ConnectError(`Cannot open disk layer ${at.location}: the target refused CHAP account "${at.auth!.username}" (wrong password, or the account is not bound to the target)`, { driver: "qemu", cause: error });
      }
      throw error;
    }
  });
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
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const dir = mkdtempSync(join(tmpdir(), "virtkit-doc-"));
 * try {
 *   execFileSync("qemu-img", ["create", "-q", "-f", "raw", `${dir}/a.raw`, "1M"]);
 *   const storage = {} as import("../../core/driver.ts").StorageAccess; // host paths need no pools
 *   const [disk] = await resolveDisks([{ target: "vda", path: `${dir}/a.raw` }], storage);
 *   if (disk?.layers.length !== 1 || disk.layers[0]!.node !== "vda-0") throw new Error("unexpected");
 * } finally {
 *   rmSync(dir, { recursive: true, force: true });
 * }
 * ```
 */
export async function resolveDisks(disks: readonly DiskConfig[], storage: StorageAccess, options: ChainOptions = {}): Promise<RunDisk[]> {
  const { signal } = options;
  const out: RunDisk[] = [];
  for (const [index, disk] of disks.entries()) {
    let path = disk.path;
    if (disk.volume) path = (await (await storage.backend(disk.volume.pool)).lookupVolume(disk.volume.name, { signal })).path;
    const layers = await readChain(path!, disk.format, nodeBase(disk.target, index), { authOf: (location) => lunAuth(storage, location), ...options });
    out.push({ target: disk.target, layers, ...(disk.volume ? { volume: { pool: disk.volume.pool, name: disk.volume.name } } : {}) });
  }
  return out;
}

/** The CHAP account of the pool volume at an `iscsi://` location (libvirt copies the pool's `<auth>` likewise). */
async function lunAuth(storage: StorageAccess, location: string): Promise<IscsiChapAuth | undefined> {
  return (await storage.findVolume({ path: location }))?.volume.auth;
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
