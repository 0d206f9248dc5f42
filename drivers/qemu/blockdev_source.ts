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
import { lunUrl, parseIscsiUrl } from "../iscsi/lun_names.ts";

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
 * @returns The node's options, for `-blockdev` JSON.
 * @throws {UnsupportedError} For an `iscsi://` URL carrying CHAP credentials: QEMU takes a CHAP secret
 *   only as a secret object, which this driver does not create yet.
 * @example
 * ```ts
 * import { protocolBlockdev } from "./blockdev_source.ts";
 * const node = protocolBlockdev("iscsi://127.0.0.1:3261/iqn.2026-01.com.example:t/2", "vda-1-file", true);
 * if (node.driver !== "iscsi" || node.portal !== "127.0.0.1:3261" || node.lun !== 2 || node["read-only"] !== true) throw new Error("unexpected");
 * if (protocolBlockdev("/images/a.raw", "vda-0-file", false).driver !== "file") throw new Error("unexpected");
 * ```
 */
export function protocolBlockdev(location: string, nodeName: string, readOnly: boolean): Record<string, unknown> {
  const lun = location.startsWith("iscsi://") ? parseIscsiUrl(location) : undefined;
  if (!lun) return { driver: "file", filename: location, "node-name": nodeName, "read-only": readOnly };
  if (lun.auth) {
    throw new UnsupportedError("iscsiChap", { driver: "qemu", detail: `disk layer "${nodeName}" is on a CHAP-protected LUN; QEMU disks on such LUNs are not supported yet` });
  }
  const host = lun.host.includes(":") ? `[${lun.host}]` : lun.host;
  return { driver: "iscsi", transport: "tcp", portal: `${host}:${lun.port}`, target: lun.target, lun: lun.lun, "node-name": nodeName, "read-only": readOnly };
}
