/**
 * The protocol node under a disk layer, by where the layer is: a host file (`driver: "file"`) or a LUN
 * of an iSCSI target (`driver: "iscsi"`, QEMU's libiscsi driver from Debian's `qemu-block-extra`), so a
 * domain can use an `iscsi` pool volume as its disk or as the backing of a qcow2 overlay. Layers are
 * named by `iscsi://host:port/IQN/LUN`, the key of the pool's volume, also when `qemu-img info` reports
 * them as a `json:{...}` pseudo-filename.
 *
 * @module
 */
import { UnsupportedError } from "../../core/errors.ts";
import { type IscsiLocator, lunUrl, parseIscsiUrl } from "../iscsi/lun_names.ts";

/**
 * How QEMU logs in to a CHAP-protected LUN layer: the account name and the id of the QEMU `secret`
 * object holding the password (the password itself is never part of a node's options, nor of a run
 * record: QEMU holds it once the object is made).
 */
export interface LayerAuth {
  /** The CHAP account name (QEMU's iscsi `user`). */
  readonly username: string;
  /** Id of the QEMU `secret` object with the password (QEMU's iscsi `password-secret`). */
  readonly secret: string;
}

/**
 * The name a layer is known by: `qemu-img info`'s filename, with an iSCSI layer's `json:` form turned
 * back into its `iscsi://` URL.
 *
 * @param filename What `qemu-img info --output=json` reports as `filename`.
 * @returns A host path or an `iscsi://` URL.
 * @example
 * ```ts
 * import { layerLocation } from "./blockdev_source.ts";
 * const json = 'json:{"driver": "raw", "file": {"lun": "1", "portal": "127.0.0.1:3261", "driver": "iscsi", "transport": "tcp", "target": "iqn.2026-01.com.example:t"}}';
 * if (layerLocation(json) !== "iscsi://127.0.0.1:3261/iqn.2026-01.com.example:t/1") throw new Error(layerLocation(json));
 * if (layerLocation("/images/a.qcow2") !== "/images/a.qcow2") throw new Error("unexpected");
 * ```
 */
export function layerLocation(filename: string): string {
  if (!filename.startsWith("json:")) return filename;
  let spec: { file?: { driver?: unknown; portal?: unknown; target?: unknown; lun?: unknown } };
  try {
    spec = JSON.parse(filename.slice(5)) as typeof spec;
  } catch {
    return filename;
  }
  const file = spec.file;
  if (file?.driver !== "iscsi" || typeof file.portal !== "string" || typeof file.target !== "string") return filename;
  const portal = /^\[?([^\]]+?)\]?:(\d+)$/.exec(file.portal);
  const lun = Number(file.lun ?? 0);
  if (!portal || !Number.isInteger(lun)) return filename;
  return lunUrl({ host: portal[1]!, port: Number(portal[2]) }, file.target, lun);
}

/**
 * The `-blockdev` protocol node of a layer.
 *
 * @param location A host path or an `iscsi://` URL (see {@linkcode layerLocation}).
 * @param nodeName The node name.
 * @param readOnly Whether the node is read-only.
 * @param auth For a CHAP-protected LUN: the account and the id of the QEMU secret object with its password.
 * @returns The node's options, for `-blockdev` JSON or `blockdev-add`.
 * @throws {UnsupportedError} For an `iscsi://` URL carrying credentials itself (`user%password@`):
 *   they would show in `ps` and in `dom.disks()`; put them in the `auth` of an `iscsi` pool instead.
 * @example
 * ```ts
 * import { protocolBlockdev } from "./blockdev_source.ts";
 * const node = protocolBlockdev("iscsi://127.0.0.1:3261/iqn.2026-01.com.example:t/2", "vda-1-file", true);
 * if (node.driver !== "iscsi" || node.portal !== "127.0.0.1:3261" || node.lun !== 2 || node["read-only"] !== true) throw new Error("unexpected");
 * const chap = protocolBlockdev("iscsi://127.0.0.1:3261/iqn.2026-01.com.example:t/2", "vda-1-file", true, { username: "alice", secret: "vda-1-secret" });
 * if (chap.user !== "alice" || chap["password-secret"] !== "vda-1-secret") throw new Error("unexpected");
 * if (protocolBlockdev("/images/a.raw", "vda-0-file", false).driver !== "file") throw new Error("unexpected");
 * ```
 */
export function protocolBlockdev(location: string, nodeName: string, readOnly: boolean, auth?: LayerAuth): Record<string, unknown> {
  const lun = location.startsWith("iscsi://") ? parseIscsiUrl(location) : undefined;
  if (!lun) return { driver: "file", filename: location, "node-name": nodeName, "read-only": readOnly };
  return { ...iscsiOptions(lun, nodeName, auth), "node-name": nodeName, "read-only": readOnly };
}

/**
 * The options of QEMU's `iscsi` protocol driver for a LUN, with CHAP through a secret object.
 *
 * @param lun The parsed LUN URL.
 * @param layer Names the layer in the error.
 * @param auth The CHAP account and the secret object's id, when the LUN needs them.
 * @returns `driver`, `transport`, `portal`, `target`, `lun` (and `user`, `password-secret`).
 * @throws {UnsupportedError} When the URL itself carries credentials.
 * @example
 * ```ts
 * import { iscsiOptions } from "./blockdev_source.ts";
 * const options = iscsiOptions({ host: "::1", port: 3260, target: "iqn.2026-01.com.example:t", lun: 1 }, "vda-0-file");
 * if (options.portal !== "[::1]:3260" || "user" in options) throw new Error("unexpected");
 * ```
 */
export function iscsiOptions(lun: IscsiLocator, layer: string, auth?: LayerAuth): Record<string, string | number> {
  if (lun.auth) {
    throw new UnsupportedError("iscsi credentials in a URL", {
      driver: "qemu",
      detail: `disk layer "${layer}" names its LUN with user%password@ in the URL, which would show in ps and in the domain's disks; define an iscsi pool with auth for the target and use its volume`,
    });
  }
  const host = lun.host.includes(":") ? `[${lun.host}]` : lun.host;
  const options: Record<string, string | number> = { driver: "iscsi", transport: "tcp", portal: `${host}:${lun.port}`, target: lun.target, lun: lun.lun };
  if (auth) Object.assign(options, { user: auth.username, "password-secret": auth.secret });
  return options;
}
