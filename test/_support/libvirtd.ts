/**
 * A real, unprivileged libvirtd 9.0 for tests (machine-facts §7): a scratch directory owned by `nobody`
 * holds HOME, the XDG directories, the config and the socket directory; the daemon runs as `nobody`
 * through `setpriv`, serves libvirt's `qemu` and `test` drivers on one unix socket (and on loopback TCP,
 * or TLS with x509 client certificates, when asked), and is stopped by PID (it and the virtlogd it spawned), also when a test fails.
 *
 * Readiness is a successful RPC (`virsh uri`), polled with a deadline: the socket accepts connections
 * before the daemon has finished reading its config.
 */
import { execFileSync, spawn } from "node:child_process";
import { accessSync, chownSync, constants, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const DAEMON = "/usr/sbin/libvirtd";
/** Tools the helper needs; `libvirtdMissing` lists the absent ones. */
const TOOLS = [DAEMON, "/usr/bin/virsh", "/usr/bin/setpriv"];

function exists(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The tools this machine lacks for a real libvirtd (empty when it can run one). */
export const libvirtdMissing: string[] = TOOLS.filter((tool) => !exists(tool));
/** Skip the real-libvirtd cases locally when it is missing; under CI=true they run (and fail). */
export const skipLibvirtd: boolean = libvirtdMissing.length > 0 && process.env.CI !== "true";

/** Options of {@linkcode startLibvirtd}. */
export interface LibvirtdOptions {
  /** The libvirt driver {@linkcode RunningLibvirtd.uri} names by default (`"qemu"`: `qemu:///session`). */
  driver?: "qemu" | "test";
  /** Also listen on 127.0.0.1 at this TCP port, with `auth_tcp = "none"` (0: pick a free port). */
  tcpPort?: number;
  /**
   * Also listen with TLS on 127.0.0.1 (`listen_tls`, `auth_tls = "none"`: the verified client certificate
   * is the authentication), with these PEM files (copied into the scratch directory for `nobody`);
   * `port` 0 or absent picks a free one. libvirtd checks every client certificate against the CA.
   */
  tls?: { caFile: string; certFile: string; keyFile: string; port?: number };
  /** More `libvirtd.conf` lines (`key = value`), e.g. `max_client_requests = 16`. */
  extraConfig?: string[];
  /** How long to wait for the first successful RPC (default 15 s). */
  readyTimeoutMs?: number;
}

/** A started daemon. */
export interface RunningLibvirtd {
  /** Its scratch directory (HOME); reachable by `nobody`. */
  readonly dir: string;
  /** The unix socket (read-write, no auth). */
  readonly socketPath: string;
  /** The daemon's PID. */
  readonly pid: number;
  /** The TCP port when asked for one. */
  readonly tcpPort?: number;
  /** The TLS port when asked for a TLS listener. */
  readonly tlsPort?: number;
  /** A URI over the unix socket, for the default driver or the one named. */
  uri(driver?: "qemu" | "test"): string;
  /** Runs `virsh -c uri ARGS` and returns its stdout; throws with stderr on failure. */
  virsh(args: string[], options?: { driver?: "qemu" | "test"; input?: string }): string;
  /** A directory inside `dir`, owned by `nobody`, for images and pools the daemon must reach. */
  mkdir(name: string): string;
  /** Stops the daemon (SIGTERM, then SIGKILL after 5 s) and its virtlogd, and removes the directory. */
  stop(): Promise<void>;
}

const nobody = (): { uid: number; gid: number } => {
  const uid = Number(execFileSync("id", ["-u", "nobody"], { encoding: "utf8" }).trim());
  const gid = Number(execFileSync("id", ["-g", "nobody"], { encoding: "utf8" }).trim());
  return { uid, gid };
};

async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** PIDs of processes (other than this one) whose command line contains `text`. */
function processesNaming(text: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(text)) found.push(pid);
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

/**
 * Starts an unprivileged libvirtd in a fresh scratch directory with a random socket directory.
 *
 * @throws {Error} When the tools are missing or the daemon does not answer in time (its log is quoted).
 */
export async function startLibvirtd(options: LibvirtdOptions = {}): Promise<RunningLibvirtd> {
  if (libvirtdMissing.length > 0) throw new Error(`A real libvirtd needs ${libvirtdMissing.join(", ")} (CI=true forbids skipping)`);
  const { uid, gid } = nobody();
  const dir = mkdtempSync(join(tmpdir(), "vk-libvirtd-"));
  const run = join(dir, "run");
  for (const sub of ["", "run", "config", "cache", "runtime"]) {
    mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
    chownSync(join(dir, sub), uid, gid);
  }
  const tcpPort = options.tcpPort === undefined ? undefined : options.tcpPort || await freePort();
  const tlsPort = options.tls === undefined ? undefined : options.tls.port || await freePort();
  const tlsFiles: string[] = [];
  if (options.tls) {
    const pki = join(dir, "pki");
    mkdirSync(pki, { mode: 0o700 });
    chownSync(pki, uid, gid);
    for (const [name, from] of [["cacert.pem", options.tls.caFile], ["servercert.pem", options.tls.certFile], ["serverkey.pem", options.tls.keyFile]] as const) {
      const to = join(pki, name);
      writeFileSync(to, readFileSync(from), { mode: 0o600 });
      chownSync(to, uid, gid);
      tlsFiles.push(to);
    }
  }
  const listenAddr = tcpPort !== undefined || tlsPort !== undefined ? [`listen_addr = "127.0.0.1"`] : [];
  const log = join(dir, "libvirtd.log");
  const conf = [
    `unix_sock_dir = "${run}"`,
    `unix_sock_rw_perms = "0700"`,
    `auth_unix_rw = "none"`,
    `log_outputs = "3:file:${log}"`,
    ...listenAddr,
    ...(tcpPort === undefined ? [] : [`listen_tcp = 1`, `tcp_port = "${tcpPort}"`, `auth_tcp = "none"`]),
    ...(tlsPort === undefined
      ? [`listen_tls = 0`]
      : [`listen_tls = 1`, `tls_port = "${tlsPort}"`, `auth_tls = "none"`, `ca_file = "${tlsFiles[0]}"`, `cert_file = "${tlsFiles[1]}"`, `key_file = "${tlsFiles[2]}"`]),
    ...(options.extraConfig ?? []),
  ].join("\n");
  const confPath = join(dir, "libvirtd.conf");
  writeFileSync(confPath, `${conf}\n`);
  const env = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, "config"),
    XDG_CACHE_HOME: join(dir, "cache"),
    XDG_RUNTIME_DIR: join(dir, "runtime"),
  };
  const args = [`--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", DAEMON, ...(tcpPort === undefined && tlsPort === undefined ? [] : ["-l"]), "-f", confPath];
  const child = spawn("setpriv", args, { env, stdio: "ignore", detached: false });
  const pid = child.pid;
  if (pid === undefined) throw new Error("libvirtd did not start");
  const socketPath = join(run, "libvirt-sock");
  const defaultDriver = options.driver ?? "qemu";
  const uri = (driver: "qemu" | "test" = defaultDriver) =>
    `${driver}+unix:///${driver === "qemu" ? "session" : "default"}?socket=${socketPath}`;
  const virsh = (virshArgs: string[], opts: { driver?: "qemu" | "test"; input?: string } = {}): string => {
    try {
      return execFileSync("virsh", ["-q", "-c", uri(opts.driver), ...virshArgs], {
        encoding: "utf8",
        env,
        input: opts.input,
        stdio: ["pipe", "pipe", "pipe"],
        timeout: 60_000,
      });
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      throw new Error(`virsh ${virshArgs.join(" ")} failed: ${e.stderr?.trim() || e.message}`);
    }
  };
  const stop = async () => {
    const virtlogdPid = (() => {
      try {
        return Number(readFileSync(join(dir, "runtime", "libvirt", "virtlogd.pid"), "utf8").trim());
      } catch {
        return undefined;
      }
    })();
    if (alive(pid)) {
      process.kill(pid, "SIGTERM");
      if (!(await waitFor(() => child.exitCode !== null || child.signalCode !== null, 5000))) process.kill(pid, "SIGKILL");
      await waitFor(() => child.exitCode !== null || child.signalCode !== null, 5000);
    }
    if (virtlogdPid !== undefined && virtlogdPid > 0 && alive(virtlogdPid)) process.kill(virtlogdPid, "SIGTERM");
    // libvirtd leaves the guests it started running when it stops (as it should); a test that failed
    // before destroying its domain leaves a QEMU behind. Each one names this daemon's directory on its
    // command line, so they are found by it and killed by PID.
    for (const guest of processesNaming(dir)) {
      try {
        process.kill(guest, "SIGKILL");
      } catch {
        // It ended on its own meanwhile.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const timeoutMs = options.readyTimeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const text = (() => { try { return readFileSync(log, "utf8"); } catch { return ""; } })();
      await stop();
      throw new Error(`libvirtd exited before answering: ${text.slice(-2000)}`);
    }
    try {
      virsh(["uri"]);
      break;
    } catch (error) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`libvirtd did not answer within ${timeoutMs} ms: ${(error as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  const mkdir = (name: string) => {
    const path = join(dir, name);
    mkdirSync(path, { recursive: true });
    chownSync(path, uid, gid);
    return path;
  };
  return { dir, socketPath, pid, ...(tcpPort === undefined ? {} : { tcpPort }), ...(tlsPort === undefined ? {} : { tlsPort }), uri, virsh, mkdir, stop };
}
