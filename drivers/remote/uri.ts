/**
 * How a remote URI (libvirt's forms) reaches a daemon: `DRIVER+unix:///PATH[?socket=SOCK]`,
 * `DRIVER+tcp://HOST[:PORT]/PATH`, `DRIVER+tls://HOST[:PORT]/PATH[?pkipath=DIR]`. The name sent in
 * CONNECT_OPEN is the URI without transport, host, port and the client-side parameters, as libvirt's
 * client sends it (`qemu+tcp://h:1/session?socket=x` opens `qemu:///session`).
 *
 * @module
 */
import type { ConnectionUri } from "../../core/uri.ts";

/** Where and how to connect. */
export type RemoteTarget =
  | { readonly transport: "unix"; readonly socketPath: string; readonly name: string; readonly readOnly: boolean }
  | { readonly transport: "tcp"; readonly host: string; readonly port: number; readonly name: string; readonly readOnly: boolean }
  | {
    readonly transport: "tls";
    readonly host: string;
    readonly port: number;
    readonly name: string;
    readonly readOnly: boolean;
    /** CA certificate, client certificate and key, in libvirt's layout. */
    readonly pki: { readonly caFile: string; readonly certFile: string; readonly keyFile: string };
    /** Whether to check the server's certificate (libvirt's `no_verify=1` turns it off). */
    readonly verify: boolean;
  };

/** Query parameters the client consumes itself (libvirt's remote driver list, plus virtkit's `stateDir`). */
const CLIENT_PARAMS = new Set([
  "name", "command", "socket", "auth", "netcat", "keyfile", "sshauth", "no_verify", "no_tty", "pkipath",
  "known_hosts", "known_hosts_verify", "mode", "proxy", "tls_priority", "readonly", "stateDir",
]);
/** libvirt's default ports. */
export const DEFAULT_TCP_PORT = 16509;
/** libvirt's default TLS port. */
export const DEFAULT_TLS_PORT = 16514;

/** Where the environment says things are (injectable for tests). */
export interface UriEnvironment {
  /** `XDG_RUNTIME_DIR`. */
  readonly runtimeDir?: string;
  /** The user's home directory. */
  readonly homeDir?: string;
  /** Whether the process runs as root. */
  readonly root?: boolean;
}

/**
 * Resolves a remote URI.
 *
 * @param uri The parsed URI; its transport must be `unix`, `tcp` or `tls`.
 * @param env Runtime and home directories, for the default socket and PKI paths.
 * @returns The target.
 * @throws {TypeError} For another transport, a host on `unix`, a missing host on `tcp`/`tls`, or a relative socket path.
 * @example
 * ```ts
 * import { parseUri } from "virtkit";
 * import { remoteTarget } from "./uri.ts";
 * const t = remoteTarget(parseUri("test+unix:///default?socket=/tmp/d/libvirt-sock"));
 * if (t.transport !== "unix" || t.socketPath !== "/tmp/d/libvirt-sock" || t.name !== "test:///default") throw new Error("unexpected");
 * const tcp = remoteTarget(parseUri("qemu+tcp://127.0.0.1:16600/session"));
 * if (tcp.transport !== "tcp" || tcp.port !== 16600 || tcp.name !== "qemu:///session") throw new Error("unexpected");
 * ```
 */
export function remoteTarget(uri: ConnectionUri, env: UriEnvironment = {}): RemoteTarget {
  const transport = uri.transport;
  const fail = (why: string): never => {
    throw new TypeError(`Invalid remote URI "${uri.href}": ${why}`);
  };
  const name = openName(uri);
  const readOnly = uri.params.get("readonly") === "1";
  if (transport === "unix") {
    if (uri.host !== "") fail(`the unix transport takes no host (write "${uri.scheme}+unix:///${uri.path.replace(/^\//, "")}")`);
    const socketPath = uri.params.get("socket") ?? defaultSocket(uri, env);
    if (!socketPath.startsWith("/")) fail(`socket must be an absolute path, got ${JSON.stringify(socketPath)}`);
    return { transport, socketPath, name, readOnly };
  }
  if (transport === "tcp" || transport === "tls") {
    if (uri.host === "") fail(`the ${transport} transport needs a host`);
    const host = uri.host.replace(/^\[(.*)\]$/, "$1");
    const port = uri.port ?? (transport === "tcp" ? DEFAULT_TCP_PORT : DEFAULT_TLS_PORT);
    if (transport === "tcp") return { transport, host, port, name, readOnly };
    return { transport, host, port, name, readOnly, pki: pkiFiles(uri, env), verify: uri.params.get("no_verify") !== "1" };
  }
  return fail(`transport "${transport ?? ""}" is not supported (use unix, tcp or tls)`);
}

/** The name libvirt's client sends: scheme, path and the server-side parameters. */
function openName(uri: ConnectionUri): string {
  const rest = [...uri.params].filter(([key]) => !CLIENT_PARAMS.has(key));
  const query = rest.length ? `?${rest.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&")}` : "";
  return `${uri.scheme}://${uri.path}${query}`;
}

function defaultSocket(uri: ConnectionUri, env: UriEnvironment): string {
  // libvirt: the system daemon's socket, or the session daemon's under the runtime directory.
  if (uri.path === "/session" || (!env.root && uri.path !== "/system")) {
    const runtime = env.runtimeDir ?? (env.homeDir ? `${env.homeDir}/.cache` : undefined);
    if (runtime) return `${runtime}/libvirt/libvirt-sock`;
  }
  return "/var/run/libvirt/libvirt-sock";
}

function pkiFiles(uri: ConnectionUri, env: UriEnvironment): { caFile: string; certFile: string; keyFile: string } {
  const dir = uri.params.get("pkipath");
  if (dir !== undefined) return { caFile: `${dir}/cacert.pem`, certFile: `${dir}/clientcert.pem`, keyFile: `${dir}/clientkey.pem` };
  if (!env.root && env.homeDir) {
    const home = `${env.homeDir}/.pki/libvirt`;
    return { caFile: "/etc/pki/CA/cacert.pem", certFile: `${home}/clientcert.pem`, keyFile: `${home}/clientkey.pem` };
  }
  return { caFile: "/etc/pki/CA/cacert.pem", certFile: "/etc/pki/libvirt/clientcert.pem", keyFile: "/etc/pki/libvirt/private/clientkey.pem" };
}
