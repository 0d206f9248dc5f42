/**
 * Backings that are not host files but network block devices named by URL (`iscsi://host:port/IQN/LUN`,
 * the key of an `iscsi` pool volume): a qcow2 overlay in a `dir` pool may sit on such a template, as
 * `qemu-img create -b iscsi://... -F raw` makes it. QEMU opens it (its iscsi driver); the image engine
 * reads only host files, so offline I/O through such a backing is refused with `UnsupportedError`.
 *
 * @module
 */
import { UnsupportedError } from "../../core/errors.ts";

/** The schemes recorded as they are, never resolved against the pool directory. */
const NETWORK_BACKING = /^iscsi:\/\/[^/]+\/[^/]+\/\d+$/;

/**
 * Whether a backing reference names a network LUN rather than a file.
 *
 * @param backingPath The recorded or requested backing.
 * @returns `true` for an `iscsi://host:port/IQN/LUN` URL.
 * @example
 * ```ts
 * import { isNetworkBacking } from "./network_backing.ts";
 * if (!isNetworkBacking("iscsi://127.0.0.1:3260/iqn.2026-01.com.example:t/1") || isNetworkBacking("/images/base.raw")) throw new Error("unexpected");
 * ```
 */
export function isNetworkBacking(backingPath: string): boolean {
  return NETWORK_BACKING.test(backingPath);
}

/**
 * The error for offline I/O through a network backing.
 *
 * @param label The volume (`volume "a" in pool "p"`).
 * @param backingPath Its backing.
 * @returns An `UnsupportedError` saying what works instead.
 * @example
 * ```ts
 * import { networkBackingUnsupported } from "./network_backing.ts";
 * const error = networkBackingUnsupported('volume "a"', "iscsi://h:3260/iqn.2026-01.com.example:t/1");
 * if (error.code !== "unsupported" || !error.message.includes("running qemu domain")) throw new Error(error.message);
 * ```
 */
export function networkBackingUnsupported(label: string, backingPath: string): UnsupportedError {
  return new UnsupportedError("openVolume", {
    driver: "dir",
    detail: `${label} has the network backing "${backingPath}", which the image engine cannot read; pull it in a running qemu domain, or clone the LUN first`,
  });
}
