/**
 * How the `iscsi` pool names its volumes: `unit:0:0:N` (libvirt's name for LUN N of the one target),
 * with key and path `iscsi://host:port/IQN/N` (the URL QEMU's and libiscsi's tools open).
 *
 * @module
 */

const UNIT = /^unit:0:0:(0|[1-9]\d{0,4})$/;

/**
 * The volume name of a LUN.
 *
 * @param lun The LUN.
 * @returns `unit:0:0:N`.
 * @example
 * ```ts
 * import { lunVolumeName } from "./lun_names.ts";
 * if (lunVolumeName(3) !== "unit:0:0:3") throw new Error("unexpected");
 * ```
 */
export function lunVolumeName(lun: number): string {
  return `unit:0:0:${lun}`;
}

/**
 * The LUN a volume name stands for.
 *
 * @param name A volume name.
 * @returns The LUN, or `undefined` when the name is not of the form `unit:0:0:N`.
 * @example
 * ```ts
 * import { lunOfVolumeName } from "./lun_names.ts";
 * if (lunOfVolumeName("unit:0:0:12") !== 12 || lunOfVolumeName("unit:0:0:x") !== undefined) throw new Error("unexpected");
 * ```
 */
export function lunOfVolumeName(name: string): number | undefined {
  const match = UNIT.exec(name);
  const lun = match ? Number(match[1]) : undefined;
  return lun !== undefined && lun <= 0x3fff ? lun : undefined;
}

/**
 * The URL of a LUN (IPv6 hosts in brackets).
 *
 * @param portal Host and port.
 * @param target Target IQN.
 * @param lun The LUN.
 * @returns `iscsi://host:port/IQN/LUN`.
 * @example
 * ```ts
 * import { lunUrl } from "./lun_names.ts";
 * const url = lunUrl({ host: "::1", port: 3260 }, "iqn.2026-01.com.example:a", 1);
 * if (url !== "iscsi://[::1]:3260/iqn.2026-01.com.example:a/1") throw new Error(url);
 * ```
 */
export function lunUrl(portal: { host: string; port: number }, target: string, lun: number): string {
  const host = portal.host.includes(":") ? `[${portal.host}]` : portal.host;
  return `iscsi://${host}:${portal.port}/${target}/${lun}`;
}

/** What an `iscsi://` URL names. */
export interface IscsiLocator {
  /** Portal host (without brackets). */
  readonly host: string;
  /** Portal port (3260 when the URL has none). */
  readonly port: number;
  /** Target IQN. */
  readonly target: string;
  /** The LUN. */
  readonly lun: number;
  /** `user%password` credentials in the URL, libiscsi's form, when present. */
  readonly auth?: { readonly username: string; readonly password: string };
}

/**
 * Parses `iscsi://[user[%password]@]host[:port]/IQN/LUN`, the URL form libiscsi and QEMU accept.
 *
 * @param url The URL.
 * @returns What it names, or `undefined` when it is not such a URL.
 * @example
 * ```ts
 * import { parseIscsiUrl } from "./lun_names.ts";
 * const at = parseIscsiUrl("iscsi://127.0.0.1:3261/iqn.2026-01.com.example:a/2");
 * if (at?.port !== 3261 || at.lun !== 2 || at.target !== "iqn.2026-01.com.example:a") throw new Error("unexpected");
 * if (parseIscsiUrl("/var/lib/images/a.raw") !== undefined) throw new Error("unexpected");
 * ```
 */
export function parseIscsiUrl(url: string): IscsiLocator | undefined {
  const match = /^iscsi:\/\/(?:([^@/]*)@)?(\[[^\]]+\]|[^:/]+)(?::(\d{1,5}))?\/([^/]+)\/(\d{1,5})$/.exec(url);
  if (!match) return undefined;
  const [, who, rawHost, rawPort, target, rawLun] = match;
  const port = rawPort === undefined ? 3260 : Number(rawPort);
  const lun = Number(rawLun);
  if (port < 1 || port > 65535 || lun > 0x3fff) return undefined;
  const host = rawHost!.startsWith("[") ? rawHost!.slice(1, -1) : rawHost!;
  try {
    let auth: IscsiLocator["auth"];
    if (who !== undefined) {
      // libiscsi's form: the first "%" separates user and password; both may be percent-encoded beyond it.
      const cut = who.indexOf("%");
      auth = cut < 0 ? { username: decodeURIComponent(who), password: "" } : { username: decodeURIComponent(who.slice(0, cut)), password: decodeURIComponent(who.slice(cut + 1)) };
    }
    return { host, port, target: decodeURIComponent(target!), lun, ...(auth ? { auth } : {}) };
  } catch {
    return undefined; // a malformed percent-escape
  }
}
