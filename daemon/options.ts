/**
 * The command line of `virtkitd`, parsed strictly (`node:util` `parseArgs`), and checked for the
 * security rules of design §11: TCP only with TLS and client certificates, or `--insecure-tcp` on a
 * loopback address.
 *
 * @module
 */
import { isIP } from "node:net";
import { parseArgs } from "node:util";
import { parseBytes } from "../core/units.ts";

/** Where the daemon listens. */
export type ListenSpec =
  | {
    /** A Unix socket. */
    readonly kind: "unix";
    /** Its path. */
    readonly path: string;
  }
  | {
    /** A TCP socket (TLS unless `--insecure-tcp`). */
    readonly kind: "tcp";
    /** Address to bind (`127.0.0.1`, `::1`, a host name). */
    readonly host: string;
    /** Port; 0 picks a free one (the readiness line says which). */
    readonly port: number;
  };

/** The TLS files of `--tls-cert/--tls-key/--tls-ca` (libvirt's x509 model: the CA verifies clients). */
export interface TlsFiles {
  /** The server's certificate (PEM). */
  readonly certFile: string;
  /** Its private key (PEM). */
  readonly keyFile: string;
  /** The CA that signed the client certificates it accepts (PEM). */
  readonly caFile: string;
}

/** What `virtkitd` was asked to do. */
export interface DaemonOptions {
  /** One or more listeners. */
  readonly listen: readonly ListenSpec[];
  /** TLS files; required when a TCP listener is not `--insecure-tcp`. */
  readonly tls?: TlsFiles;
  /** TCP without TLS, allowed only on loopback addresses. */
  readonly insecureTcp: boolean;
  /** State directory handed to the connections it opens (`connect(uri, { stateDir })`). */
  readonly stateDir?: string;
  /** The URIs clients may open. */
  readonly allow: readonly string[];
  /** Unix socket permission bits (default 0o600: its owner only). */
  readonly socketMode: number;
  /** A client's unsent backlog that disconnects it (`--max-client-backlog`, default: the outbox's 8 MiB). */
  readonly maxClientBacklogBytes?: number;
}

/** URIs a client may open when no `--allow` is given. */
export const DEFAULT_ALLOWED_URIS: readonly string[] = Object.freeze(["test:///default", "qemu:///session"]);

/** The usage text `virtkitd --help` prints. */
export const DAEMON_USAGE = [
  "usage: virtkitd --listen unix:PATH [--listen tcp:HOST:PORT] [--tls-cert FILE --tls-key FILE --tls-ca FILE]",
  "                [--insecure-tcp] [--state-dir DIR] [--allow URI ...] [--socket-mode OCTAL] [--max-client-backlog SIZE]",
].join("\n");

/**
 * Parses and checks `virtkitd`'s arguments.
 *
 * @param argv The arguments after the program name.
 * @returns The checked options, or `"help"` for `--help`.
 * @throws {TypeError} For an unknown option, a missing value, a malformed `--listen`, TLS files given
 *   only in part, a TCP listener without TLS (and without `--insecure-tcp`), or `--insecure-tcp` on a
 *   non-loopback address.
 * @example
 * ```ts
 * import { parseDaemonArgs } from "./options.ts";
 * const options = parseDaemonArgs(["--listen", "unix:/tmp/vk.sock", "--allow", "test:///default"]);
 * if (options === "help" || options.listen[0]?.kind !== "unix" || options.allow.length !== 1) throw new Error("unexpected");
 * let refused = false;
 * try { parseDaemonArgs(["--listen", "tcp:0.0.0.0:16509"]); } catch { refused = true; }
 * if (!refused) throw new Error("plain TCP must need TLS");
 * ```
 */
export function parseDaemonArgs(argv: readonly string[]): DaemonOptions | "help" {
  const { values, positionals } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: true,
    options: {
      listen: { type: "string", multiple: true },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "tls-ca": { type: "string" },
      "insecure-tcp": { type: "boolean", default: false },
      "state-dir": { type: "string" },
      allow: { type: "string", multiple: true },
      "socket-mode": { type: "string" },
      "max-client-backlog": { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) return "help";
  if (positionals.length > 0) throw new TypeError(`Unexpected argument "${positionals[0]}"\n${DAEMON_USAGE}`);
  const listen = (values.listen ?? []).map(parseListen);
  if (listen.length === 0) throw new TypeError(`Give at least one --listen\n${DAEMON_USAGE}`);
  const tls = tlsFiles(values["tls-cert"], values["tls-key"], values["tls-ca"]);
  const insecureTcp = values["insecure-tcp"] ?? false;
  for (const spec of listen) {
    if (spec.kind !== "tcp") continue;
    if (insecureTcp) {
      if (!isLoopback(spec.host)) {
        throw new TypeError(`--insecure-tcp binds only to loopback addresses, not "${spec.host}"`);
      }
    } else if (!tls) {
      throw new TypeError(
        `--listen tcp:${spec.host}:${spec.port} needs --tls-cert, --tls-key and --tls-ca (or --insecure-tcp on loopback)`,
      );
    }
  }
  const allow = values.allow && values.allow.length > 0 ? values.allow : DEFAULT_ALLOWED_URIS;
  for (const uri of allow) if (!/^[a-z][a-z0-9.-]*:\/\//i.test(uri)) throw new TypeError(`--allow "${uri}" is not a URI`);
  return {
    listen,
    tls,
    insecureTcp,
    stateDir: values["state-dir"],
    allow: Object.freeze([...allow]),
    socketMode: parseMode(values["socket-mode"]),
    ...(values["max-client-backlog"] === undefined ? {} : { maxClientBacklogBytes: parseBacklog(values["max-client-backlog"]) }),
  };
}

/**
 * Parses one `--listen` value: `unix:PATH` or `tcp:HOST:PORT` (`tcp:[::1]:PORT` for IPv6).
 *
 * @param text The option's value.
 * @returns The listener it names.
 * @throws {TypeError} For anything else.
 * @example
 * ```ts
 * import { parseListen } from "./options.ts";
 * const spec = parseListen("tcp:[::1]:0");
 * if (spec.kind !== "tcp" || spec.host !== "::1" || spec.port !== 0) throw new Error("unexpected");
 * ```
 */
export function parseListen(text: string): ListenSpec {
  if (text.startsWith("unix:")) {
    const path = text.slice(5);
    if (path.length === 0 || path.includes("\0")) throw new TypeError(`--listen "${text}": the socket path is empty or invalid`);
    return { kind: "unix", path };
  }
  const tcp = /^tcp:(?:\[([0-9a-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/i.exec(text);
  if (tcp) {
    const port = Number(tcp[3]);
    if (port > 65535) throw new TypeError(`--listen "${text}": port ${port} is out of range`);
    return { kind: "tcp", host: tcp[1] ?? tcp[2]!, port };
  }
  throw new TypeError(`--listen "${text}": expected unix:PATH or tcp:HOST:PORT`);
}

/**
 * Whether a host is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
 *
 * @param host An address or host name.
 * @returns True for loopback.
 * @example
 * ```ts
 * import { isLoopback } from "./options.ts";
 * if (!isLoopback("127.0.0.2") || isLoopback("10.0.0.1")) throw new Error("unexpected");
 * ```
 */
export function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  return isIP(host) === 4 && host.startsWith("127.");
}

function tlsFiles(certFile?: string, keyFile?: string, caFile?: string): TlsFiles | undefined {
  const given = [certFile, keyFile, caFile].filter((f) => f !== undefined).length;
  if (given === 0) return undefined;
  if (given < 3) throw new TypeError("--tls-cert, --tls-key and --tls-ca go together: give all three");
  return { certFile: certFile!, keyFile: keyFile!, caFile: caFile! };
}

function parseBacklog(text: string): number {
  const bytes = parseBytes(text);
  if (bytes < 64 * 1024) throw new TypeError(`--max-client-backlog ${text}: at least 64K, or event bursts cut clients off`);
  return bytes;
}

function parseMode(text: string | undefined): number {
  if (text === undefined) return 0o600;
  if (!/^0?[0-7]{3}$/.test(text)) throw new TypeError(`--socket-mode "${text}": expected octal permission bits such as 0600`);
  return parseInt(text, 8);
}
