/**
 * The daemon's shared connections: one virtkit connection per URI, opened at the first CONNECT_OPEN
 * that names it and shared by every client that names it after, as libvirtd shares its drivers. The
 * connections stay open until the daemon stops (libvirtd keeps its drivers loaded too), so domains, jobs
 * and events outlive any one client.
 *
 * @module
 */
import type { Connection, ConnectOptions } from "../core/connection.ts";
import { ConnectError } from "../core/errors.ts";
import { parseUri } from "../core/uri.ts";

/** Opens a connection (`connect` from `mod.ts`, or a test double). */
export type Opener = (uri: string, options: ConnectOptions) => Promise<Connection>;

/** Options of {@linkcode createConnectionTable}. */
export interface ConnectionTableOptions {
  /** The URIs clients may open (compared after normalising, see {@linkcode normalizeUri}). */
  readonly allow: readonly string[];
  /** How to open one. */
  readonly open: Opener;
  /** Handed to every open (state directory, clock...). */
  readonly connectOptions?: ConnectOptions;
}

/** The shared connections. */
export interface ConnectionTable {
  /**
   * The connection for `uri`, opened once; concurrent first calls share one open.
   *
   * @throws {ConnectError} When `uri` is not allowed (libvirtd: "no connection driver available").
   */
  acquire(uri: string): Promise<Connection>;
  /** The URI a client gets when its CONNECT_OPEN names none: the first allowed one. */
  readonly defaultUri: string;
  /** The URIs open now. */
  openUris(): string[];
  /** Closes every connection (jobs of in-process drivers end; QEMU processes keep running). */
  close(): Promise<void>;
}

/**
 * Normalises a URI the way clients send it: lower-case scheme, no transport, no host (local), and
 * without the parameters that only address the daemon (`socket`, `pkipath`, `no_verify`...).
 *
 * @param uri Such as `"TEST:///default"` or `"qemu+unix:///session?socket=/run/x"`.
 * @returns Such as `"test:///default"` or `"qemu:///session"`.
 * @throws {TypeError} For a malformed URI.
 * @example
 * ```ts
 * import { normalizeUri } from "./connection_table.ts";
 * if (normalizeUri("qemu+unix:///session?socket=/tmp/s") !== "qemu:///session") throw new Error("unexpected");
 * if (normalizeUri("qemu:///session?stateDir=%2Fx") !== "qemu:///session?stateDir=%2Fx") throw new Error("unexpected");
 * ```
 */
export function normalizeUri(uri: string): string {
  const parsed = parseUri(uri);
  const params = [...parsed.params].filter(([key]) => !TRANSPORT_PARAMS.has(key));
  const query = params.length === 0
    ? ""
    : "?" + params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");
  return `${parsed.scheme}://${parsed.path}${query}`;
}

// What libvirt's remote driver reads itself (remote_driver.c), never part of the driver's URI.
const TRANSPORT_PARAMS = new Set([
  "socket", "name", "command", "netcat", "keyfile", "sshauth", "no_verify", "no_tty", "pkipath",
  "known_hosts", "known_hosts_verify", "mode", "proxy", "tls_priority",
]);

/** Normalized forms of the URIs clients named, kept (cleared when it reaches this many: clients name few). */
const MAX_KEPT_URIS = 64;

/**
 * Creates the table.
 *
 * @param options Allowed URIs and how to open one.
 * @returns The table.
 * @example
 * ```ts
 * import { createConnectionTable } from "./connection_table.ts";
 * import { connect } from "../mod.ts";
 * const table = createConnectionTable({ allow: ["test:///default"], open: connect });
 * const a = await table.acquire("test:///default");
 * const b = await table.acquire("test+unix:///default?socket=/tmp/x");
 * if (a !== b) throw new Error("one connection per URI");
 * let denied = false;
 * try { await table.acquire("test:///empty"); } catch { denied = true; }
 * await table.close();
 * if (!denied) throw new Error("test:///empty is not allowed");
 * ```
 */
export function createConnectionTable(options: ConnectionTableOptions): ConnectionTable {
  const allowed = new Set(options.allow.map(normalizeUri));
  const opening = new Map<string, Promise<Connection>>();
  const keys = new Map<string, string>();
  let closed = false;
  return {
    defaultUri: normalizeUri(options.allow[0] ?? "test:///default"),
    acquire(uri) {
      if (closed) return Promise.reject(new Error("The daemon is stopping"));
      // Each client names its URI once, in CONNECT_OPEN, but virsh connects once per command: parsing
      // the same few URIs again was ~0.14 ms of each `virsh` run (profiled). A bad URI is never kept.
      let key = keys.get(uri);
      if (key === undefined) {
        try {
          key = normalizeUri(uri);
        } catch (error) {
          return Promise.reject(error);
        }
        if (keys.size >= MAX_KEPT_URIS) keys.clear();
        keys.set(uri, key);
      }
      if (!allowed.has(key)) return Promise.reject(
          new ConnectError(`No connection driver available for "${key}" here; allowed: ${[...allowed].join(", ")}`, {
            driver: "virtkitd",
          }),
        );
      let pending = opening.get(key);
      if (!pending) {
        pending = options.open(key, { ...options.connectOptions });
        opening.set(key, pending);
        // A failed open is forgotten, so the next client tries again (the host may have been fixed).
        pending.catch(() => {
          if (opening.get(key) === pending) opening.delete(key);
        });
      }
      return pending;
    },
    openUris() {
      return [...opening.keys()];
    },
    async close() {
      closed = true;
      const all = [...opening.values()];
      opening.clear();
      await Promise.allSettled(all.map(async (p) => (await p).close()));
    },
  };
}
