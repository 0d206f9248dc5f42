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
import type { IscsiChapAuth } from "../../core/storage_pool.ts";
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

/**
 * Refuses a LUN whose pool asks for mutual CHAP: QEMU's iscsi driver hands libiscsi the initiator's
 * account only, so it would log in without checking the target, a silent downgrade of what the pool asks.
 *
 * @param location The LUN's URL (for the message).
 * @param chap The pool's CHAP account.
 * @throws {UnsupportedError} When `chap.mutual` is set.
 * @example
 * ```ts
 * import { assertOneWayChap } from "./blockdev_source.ts";
 * assertOneWayChap("iscsi://h/iqn.2026-01.com.example:t/1", { type: "chap", username: "u", password: "p" });
 * let refused = false;
 * try { assertOneWayChap("iscsi://h/iqn.2026-01.com.example:t/1", { type: "chap", username: "u", password: "p", mutual: { username: "t", password: "q" } }); } catch { refused = true; }
 * if (!refused) throw new Error("unexpected");
 * ```
 */
export function assertOneWayChap(location: string, chap: IscsiChapAuth | undefined): void {
  if (!chap?.mutual) return;
  throw new UnsupportedError("qemu disk on a mutual CHAP LUN", {
    driver: "qemu",
    detail: `disk layer ${location} is on a pool with auth.mutual, and QEMU's iscsi driver does one-way CHAP only (it cannot check the target's answer); use a pool without mutual for LUNs QEMU opens`,
  });
}

/** The QMP calls {@linkcode addProtocolNode} makes (a `QmpClient` has them). */
export interface QmpExecutor {
  /** Runs a QMP command. */
  execute(command: string, args?: object): Promise<unknown>;
}

/** What {@linkcode addProtocolNode} opens. */
export interface ProtocolNodeRequest {
  /** A host path or an `iscsi://` URL. */
  readonly location: string;
  /** The protocol node's name. */
  readonly nodeName: string;
  /** Whether the node is read-only. */
  readonly readOnly: boolean;
  /** The pool's CHAP account of a LUN (the volume record's `auth`). */
  readonly chap?: IscsiChapAuth;
}

/**
 * Opens a layer's protocol node in a running QEMU (`blockdev-add`), as a block job does for a
 * destination. A CHAP LUN's password first becomes a QEMU `secret` object with `object-add` over QMP
 * (the monitor socket, not argv: `ps` never shows it), named `NODE-secret`.
 *
 * @param qmp The domain's QMP client.
 * @param request Where, the node name, read-only, and the CHAP account.
 * @returns The layer's `auth` (to keep with it), and `remove()`, which deletes what was added (for a
 *   failed start; it never throws).
 * @throws {QmpError} When QEMU refuses the secret or the node (the secret is removed again).
 * @throws {UnsupportedError} For a mutual CHAP account (QEMU does one-way CHAP only).
 * @example A CHAP LUN: the secret object comes first, then the node naming it
 * ```ts
 * import { addProtocolNode } from "./blockdev_source.ts";
 * const sent: Array<[string, any]> = [];
 * const qmp = { execute: async (command: string, args?: object) => { sent.push([command, args]); return {}; } };
 * const chap = { type: "chap" as const, username: "alice", password: "s3cret" };
 * const { auth } = await addProtocolNode(qmp, { location: "iscsi://127.0.0.1:3261/iqn.2026-01.com.example:t/2", nodeName: "vda-m1-file", readOnly: false, chap });
 * if (sent.map(([c]) => c).join() !== "object-add,blockdev-add" || sent[1]![1]["password-secret"] !== "vda-m1-file-secret" || auth?.username !== "alice") throw new Error(JSON.stringify(sent));
 * ```
 */
export async function addProtocolNode(qmp: QmpExecutor, request: ProtocolNodeRequest): Promise<{ auth?: LayerAuth; remove(): Promise<void> }> {
  const { location, nodeName, readOnly, chap } = request;
  const lun = chap && location.startsWith("iscsi://") ? parseIscsiUrl(location) : undefined;
  if (lun) assertOneWayChap(location, chap);
  const auth = lun ? { username: chap!.username, secret: `${nodeName}-secret` } : undefined;
  const removeSecret = async () => {
    if (auth) await qmp.execute("object-del", { id: auth.secret }).catch(() => {});
  };
  if (auth) await qmp.execute("object-add", { "qom-type": "secret", id: auth.secret, data: chap!.password, format: "raw" });
  try {
    await qmp.execute("blockdev-add", protocolBlockdev(location, nodeName, readOnly, auth));
  } catch (error) {
    await removeSecret();
    throw error;
  }
  return {
    ...(auth ? { auth } : {}),
    async remove() {
      await qmp.execute("blockdev-del", { "node-name": nodeName }).catch(() => {});
      await removeSecret();
    },
  };
}
