/**
 * A disk's backing chain read from the image headers themselves, with the image engine's header parsing
 * (`core/image`), instead of spawning `qemu-img info --backing-chain`: a spawn costs tens of
 * milliseconds, which is most of a small block job and a measurable part of an offline commit. Only what
 * the headers tell for certain is answered here: local raw and qcow2 images, named by absolute paths.
 * Anything else (a protocol such as `iscsi://` or `json:`, a block device, a format the engine does not
 * read, a backing format that would have to be probed as raw, a damaged header, a loop) gives
 * `undefined`, and the caller asks `qemu-img`, which then reports exactly what QEMU would.
 *
 * The answer matches `qemu-img info --backing-chain`: a relative backing name is joined to the
 * directory of the image that records it as QEMU's `path_combine` does (no normalising), the virtual
 * size of a raw image is its file size rounded up to 512 bytes and that of a qcow2 image its header's
 * size rounded down to 512 (QEMU counts sectors).
 *
 * @module
 */
import fsp from "node:fs/promises";
import { NotFoundError } from "../../core/errors.ts";
import { probeImage } from "../../core/image/probe.ts";
import { positionalFileOf } from "../dir/positional_handle.ts";

/** One image of a chain as its header tells it. */
export interface HeaderLayer {
  /** Where it is (the top as given, a backing as QEMU resolves its name). */
  readonly path: string;
  /** `"raw"` or `"qcow2"`. */
  readonly format: string;
  /** Virtual size in bytes. */
  readonly virtualBytes: number;
}

const SECTOR_BYTES = 512;

/**
 * Whether QEMU would read a name as a protocol (`nbd:…`, `iscsi://…`, `json:{…}`): a colon before any
 * slash (QEMU's `path_has_protocol`).
 */
function hasProtocol(name: string): boolean {
  const colon = name.indexOf(":");
  const slash = name.indexOf("/");
  return colon >= 0 && (slash < 0 || colon < slash);
}

/** QEMU's `path_combine`: a relative name goes after the last slash of the image that records it. */
function combine(from: string, name: string): string {
  return name.startsWith("/") ? name : from.slice(0, from.lastIndexOf("/") + 1) + name;
}

/**
 * Reads a chain of local raw and qcow2 images from their headers.
 *
 * @param path The top image (an absolute path; anything else gives `undefined`).
 * @param format Its format when known; absent, a qcow2 header is recognised and anything else left to `qemu-img`.
 * @param maxLayers Most images in the chain; a longer one gives `undefined` (`qemu-img` reports the loop).
 * @returns The layers, top first, or `undefined` when `qemu-img` must tell.
 * @throws {NotFoundError} When a backing file named by a header does not exist (naming it and the image that records it).
 * @example A qcow2 over a raw base named relative to it
 * ```ts
 * import { execFileSync } from "node:child_process";
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { readHeaderChain } from "./header_chain.ts";
 * const dir = mkdtempSync(join(tmpdir(), "virtkit-doc-"));
 * try {
 *   execFileSync("qemu-img", ["create", "-q", "-f", "raw", `${dir}/b.raw`, "1000"]);
 *   execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "b.raw", "-F", "raw", `${dir}/t.qcow2`, "1M"]);
 *   const chain = await readHeaderChain(`${dir}/t.qcow2`, "qcow2", 64);
 *   if (chain?.[1]?.path !== `${dir}/b.raw` || chain[1].format !== "raw" || chain[1].virtualBytes !== 1024) throw new Error("unexpected");
 * } finally {
 *   rmSync(dir, { recursive: true, force: true });
 * }
 * if ((await readHeaderChain("iscsi://h/iqn.x:t/1", "raw", 64)) !== undefined) throw new Error("unexpected");
 * ```
 */
export async function readHeaderChain(path: string, format: string | undefined, maxLayers: number): Promise<HeaderLayer[] | undefined> {
  if (!path.startsWith("/")) return undefined;
  const layers: HeaderLayer[] = [];
  const seen = new Set<string>();
  let location = path;
  let fmt = format;
  let recordedBy: string | undefined;
  for (;;) {
    if (layers.length >= maxLayers) return undefined;
    if (fmt !== undefined && fmt !== "raw" && fmt !== "qcow2") return undefined;
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(location, "r");
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (recordedBy !== undefined && (code === "ENOENT" || code === "ENOTDIR")) {
        throw new NotFoundError("volume", location, { driver: "qemu", detail: `the backing file of "${recordedBy}" does not exist`, cause: error });
      }
      // The top itself, or a file that cannot be opened for another reason: qemu-img says why.
      return undefined;
    }
    try {
      const stat = await handle.stat();
      // A block device's size is not in its stat; qemu-img reads it.
      if (!stat.isFile()) return undefined;
      const canonical = await fsp.realpath(location);
      if (seen.has(canonical)) return undefined;
      seen.add(canonical);
      if (fmt === "raw") {
        layers.push({ path: location, format: "raw", virtualBytes: Math.ceil(stat.size / SECTOR_BYTES) * SECTOR_BYTES });
        return layers;
      }
      const probe = await probeImage(positionalFileOf(handle), location).catch(() => undefined);
      // Not qcow2 (or damaged): with no format given it would be probed, which is qemu-img's to decide.
      if (probe?.qcow2 === undefined) return undefined;
      layers.push({ path: location, format: "qcow2", virtualBytes: Math.floor(probe.virtualSizeBytes / SECTOR_BYTES) * SECTOR_BYTES });
      const backing = probe.qcow2.backing;
      if (backing === undefined) return layers;
      if (hasProtocol(backing.path)) return undefined;
      recordedBy = location;
      location = combine(location, backing.path);
      fmt = backing.format;
    } finally {
      await handle.close();
    }
  }
}
