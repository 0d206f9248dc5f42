/**
 * A real, unprivileged libvirtd 9.0 for the remote driver's suites (machine-facts §7), until the shared
 * helper of the configs branch lands: a scratch directory owned by `nobody` holds HOME, the XDG
 * directories, the config and a random socket directory; the daemon runs as `nobody` through
 * `setpriv` and serves libvirt's `test` and `qemu` drivers; readiness is a successful RPC, polled with
 * a deadline; it is stopped by PID (and the virtlogd it spawned), also when a test fails.
 */
import { execFileSync, spawn } from "node:child_process";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const DAEMON = "/usr/sbin/libvirtd";
const TOOLS = [DAEMON, "/usr/bin/virsh", "/usr/bin/setpriv"];
/** Tools this machine lacks. */
export const libvirtdMissing: string[] = TOOLS.filter((tool) => !existsSync(tool));
/** Skip locally when libvirtd is missing; under CI=true the suites run (and fail). */
export const skipLibvirtd: boolean = libvirtdMissing.length > 0 && process.env.CI !== "true";

/** A started daemon. */
export interface Libvirtd {
  /** Scratch directory (HOME), reachable by `nobody`. */
  readonly dir: string;
  /** The read-write unix socket. */
  readonly socketPath: string;
  /** The daemon's PID. */
  readonly pid: number;
  /** `test+unix:///default?socket=...` or `qemu+unix:///session?socket=...`. */
  uri(driver: "test" | "qemu"): string;
  /** The same URI without the transport, as virsh/python3-libvirt take it with `-c`. */
  virshUri(driver: "test" | "qemu"): string;
  /** Runs `virsh -q -c URI ARGS`, returns stdout. */
  virsh(driver: "test" | "qemu", args: string[]): string;
  /** A directory under `dir`, owned by `nobody`. */
  mkdir(name: string): string;
  /** Stops it by PID (TERM, then KILL) with its virtlogd, and removes the directory. */
  stop(): Promise<void>;
}

const idOf = (flag: "-u" | "-g") => Number(execFileSync("id", [flag, "nobody"], { encoding: "utf8" }).trim());
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts one.
 *
 * @throws {Error} When it is missing or does not answer within 20 s (its log is quoted).
 */
export async function startLibvirtd(): Promise<Libvirtd> {
  if (libvirtdMissing.length > 0) throw new Error(`A real libvirtd needs ${libvirtdMissing.join(", ")} (CI=true forbids skipping)`);
  const uid = idOf("-u");
  const gid = idOf("-g");
  const dir = mkdtempSync(join(tmpdir(), "vk-remote-libvirtd-"));
  for (const sub of ["", "run", "config", "cache", "runtime"]) {
    mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
    chownSync(join(dir, sub), uid, gid);
  }
  const log = join(dir, "libvirtd.log");
  const confPath = join(dir, "libvirtd.conf");
  writeFileSync(confPath, [`unix_sock_dir = "${join(dir, "run")}"`, `unix_sock_rw_perms = "0700"`, `auth_unix_rw = "none"`, `listen_tls = 0`, `log_outputs = "3:file:${log}"`, ""].join("\n"));
  const env = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", HOME: dir, XDG_CONFIG_HOME: join(dir, "config"), XDG_CACHE_HOME: join(dir, "cache"), XDG_RUNTIME_DIR: join(dir, "runtime") };
  let kvm: string[] = [];
  try {
    kvm = ["--groups", execFileSync("getent", ["group", "kvm"], { encoding: "utf8" }).split(":")[2]!];
  } catch {
    kvm = ["--clear-groups"];
  }
  const child = spawn("setpriv", [`--reuid=${uid}`, `--regid=${gid}`, ...kvm, DAEMON, "-f", confPath], { env, stdio: "ignore" });
  const pid = child.pid!;
  const socketPath = join(dir, "run", "libvirt-sock");
  const virshUri = (driver: "test" | "qemu") => `${driver}:///${driver === "qemu" ? "session" : "default"}`;
  const uri = (driver: "test" | "qemu") => `${driver}+unix:///${driver === "qemu" ? "session" : "default"}?socket=${socketPath}`;
  const virsh = (driver: "test" | "qemu", args: string[]) =>
    execFileSync("virsh", ["-q", "-c", uri(driver), ...args], { encoding: "utf8", env, stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
  const stop = async () => {
    const virtlogd = (() => {
      try {
        return execFileSync("pgrep", ["-f", `virtlogd.*`, "-P", String(pid)], { encoding: "utf8" }).split("\n").filter(Boolean).map(Number);
      } catch {
        return [];
      }
    })();
    for (const p of [pid, ...virtlogd]) if (alive(p)) process.kill(p, "SIGTERM");
    const deadline = Date.now() + 5000;
    while ([pid, ...virtlogd].some(alive) && Date.now() < deadline) await pause(20);
    for (const p of [pid, ...virtlogd]) if (alive(p)) process.kill(p, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  // The socket accepts before the daemon is ready: only an answered RPC counts.
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      virsh("test", ["uri"]);
      break;
    } catch (error) {
      if (!alive(pid) || Date.now() > deadline) {
        const text = existsSync(log) ? readFileSync(log, "utf8").slice(-2000) : "(no log)";
        await stop();
        throw new Error(`libvirtd did not answer: ${(error as Error).message}\n${text}`);
      }
      await pause(50);
    }
  }
  return {
    dir,
    socketPath,
    pid,
    uri,
    virshUri,
    virsh,
    mkdir(name) {
      const path = join(dir, name);
      mkdirSync(path, { recursive: true });
      chownSync(path, uid, gid);
      return path;
    },
    stop,
  };
}
