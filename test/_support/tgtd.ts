/**
 * A real iSCSI target for tests and benchmarks: a private `tgtd` (Debian's `tgt`) on 127.0.0.1 with a
 * random free portal port and its own control port (`-C`), LUNs backed by sparse files in a temporary
 * directory, optional CHAP accounts. `stop()` deletes the system with `tgtadm --op delete --mode system`
 * (tgtd ignores SIGTERM) and kills the PID if it is still alive after a deadline.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import fsp from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import process from "node:process";

/** The programs iSCSI suites need, with their Debian packages. */
const TOOLS: Record<string, string> = { tgtd: "tgt", tgtadm: "tgt", "iscsi-ls": "libiscsi-bin", "iscsi-inq": "libiscsi-bin" };

/** Whether a program is on PATH. */
export function onPath(program: string): boolean {
  return (process.env.PATH ?? "").split(":").some((dir) => {
    try {
      accessSync(path.join(dir, program), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Tools this machine lacks, as `tool (package)`. */
export const missingIscsiTools: string[] = Object.keys(TOOLS).filter((t) => !onPath(t)).map((t) => `${t} (${TOOLS[t]})`);
/** Skip locally when tgt or libiscsi-bin is missing; under CI=true the suites run and fail. */
export const skipIscsi = missingIscsiTools.length > 0 && process.env.CI !== "true";

/** Runs a program; rejects with its stderr. */
export function run(file: string, args: string[], options: { timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: "utf8", timeout: options.timeoutMs ?? 20_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${file} ${args.join(" ")} failed: ${stderr || error.message}`)) : resolve(stdout));
  });
}

/** A free TCP port on 127.0.0.1 (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** One LUN to create: its size, and optional content writer. */
export interface LunSpec {
  /** LUN number (1 and up; tgtd keeps 0 for its controller). */
  readonly lun: number;
  /** Size in bytes. */
  readonly sizeBytes: number;
  /** Export it read-only. */
  readonly readonly?: boolean;
}

/** What {@linkcode Tgtd.start} makes: the LUNs, an incoming CHAP account, an outgoing one (mutual CHAP). */
export interface TgtdOptions {
  readonly luns: LunSpec[];
  /** Incoming account: the initiator must log in with it. */
  readonly chap?: { username: string; password: string };
  /** Outgoing account: the target answers a mutual CHAP challenge with it. */
  readonly outgoing?: { username: string; password: string };
  readonly target?: string;
}

/** A running private tgtd. */
export class Tgtd {
  readonly dir: string;
  readonly port: number;
  readonly controlPort: number;
  readonly target: string;
  readonly #child: ChildProcess;
  #stopped = false;
  #stderr = "";

  private constructor(dir: string, port: number, controlPort: number, target: string, child: ChildProcess) {
    this.dir = dir;
    this.port = port;
    this.controlPort = controlPort;
    this.target = target;
    this.#child = child;
    child.stderr?.on("data", (chunk: Buffer) => {
      if (this.#stderr.length < 65536) this.#stderr += chunk.toString();
    });
  }

  /** The PID (for cleanup by PID). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /**
   * Starts tgtd with one target holding `luns`, bound to every initiator; with `chap`, an account bound
   * to the target (incoming: the initiator authenticates).
   */
  static async start(options: TgtdOptions): Promise<Tgtd> {
    if (missingIscsiTools.length > 0) throw new Error(`The iSCSI suites need ${missingIscsiTools.join(", ")} (CI=true forbids skipping)`);
    // A random control port can be taken by another tgtd on this machine: try a few.
    for (let attempt = 1; ; attempt++) {
      try {
        return await Tgtd.#startOnce(options);
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
  }

  static async #startOnce(options: TgtdOptions): Promise<Tgtd> {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "vk-tgtd-"));
    const port = await freePort();
    // The control channel is a unix socket named after the control port: any unused number below 32768 works.
    const controlPort = 10000 + Math.floor(Math.random() * 22000);
    const target = options.target ?? `iqn.2026-12.test.virtkit:${path.basename(dir).toLowerCase().replace(/[^a-z0-9.-]/g, "")}`;
    const child = spawn("tgtd", ["-f", "-C", String(controlPort), "--iscsi", `portal=127.0.0.1:${port}`], { stdio: ["ignore", "ignore", "pipe"] });
    const tgtd = new Tgtd(dir, port, controlPort, target, child);
    await tgtd.#recordPid();
    try {
      await tgtd.#waitReady();
      await tgtd.adm(["--op", "new", "--mode", "target", "--tid", "1", "-T", target]);
      for (const spec of options.luns) await tgtd.addLun(spec);
      await tgtd.adm(["--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL"]);
      if (options.chap) {
        await tgtd.adm(["--op", "new", "--mode", "account", "--user", options.chap.username, "--password", options.chap.password]);
        await tgtd.adm(["--op", "bind", "--mode", "account", "--tid", "1", "--user", options.chap.username]);
      }
      if (options.outgoing) await tgtd.bindOutgoing(options.outgoing);
      return tgtd;
    } catch (error) {
      await tgtd.stop();
      throw error;
    }
  }

  /**
   * With `VIRTKIT_TEST_PIDS` set (`.ci/run` sets it), leaves the PID there, so the CI script's exit trap
   * can kill a tgtd that a crashed test run left behind.
   */
  async #recordPid(): Promise<void> {
    const dir = process.env.VIRTKIT_TEST_PIDS;
    if (dir && this.pid) await fsp.writeFile(path.join(dir, `tgtd-${this.pid}.pid`), String(this.pid)).catch(() => {});
  }

  /** Makes an account the target's outgoing one: what it answers a mutual CHAP challenge with. */
  async bindOutgoing(account: { username: string; password: string }): Promise<void> {
    await this.adm(["--op", "new", "--mode", "account", "--user", account.username, "--password", account.password]);
    await this.adm(["--op", "bind", "--mode", "account", "--tid", "1", "--user", account.username, "--outgoing"]);
  }

  /** The backing file of a LUN. */
  lunFile(lun: number): string {
    return path.join(this.dir, `lun${lun}.img`);
  }

  /** Adds a LUN backed by a new sparse file. */
  async addLun(spec: LunSpec): Promise<void> {
    const file = this.lunFile(spec.lun);
    const handle = await fsp.open(file, "w");
    await handle.truncate(spec.sizeBytes);
    await handle.close();
    await this.adm(["--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", String(spec.lun), "-b", file]);
    if (spec.readonly) await this.adm(["--op", "update", "--mode", "logicalunit", "--tid", "1", "--lun", String(spec.lun), "--params", "readonly=1"]);
  }

  /** Runs tgtadm on this instance's control port. */
  adm(args: string[]): Promise<string> {
    return run("tgtadm", ["-C", String(this.controlPort), "--lld", "iscsi", ...args]);
  }

  /**
   * `iscsi://127.0.0.1:PORT/IQN/LUN`, with credentials when given (libiscsi's form), and the target's
   * account for mutual CHAP (libiscsi's `target_user`/`target_password` arguments).
   */
  url(lun: number, chap?: { username: string; password: string }, outgoing?: { username: string; password: string }): string {
    const who = chap ? `${encodeURIComponent(chap.username)}%${encodeURIComponent(chap.password)}@` : "";
    const mutual = outgoing ? `?target_user=${encodeURIComponent(outgoing.username)}&target_password=${encodeURIComponent(outgoing.password)}` : "";
    return `iscsi://${who}127.0.0.1:${this.port}/${this.target}/${lun}${mutual}`;
  }

  /** Stops tgtd: delete the system over the control port, then SIGKILL the PID if it lingers. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const exited = new Promise<void>((resolve) => {
      if (this.#child.exitCode !== null || this.#child.signalCode !== null) resolve();
      else this.#child.once("exit", () => resolve());
    });
    try {
      await this.adm(["--op", "delete", "--mode", "target", "--tid", "1", "--force"]).catch(() => {});
      await run("tgtadm", ["-C", String(this.controlPort), "--op", "delete", "--mode", "system"], { timeoutMs: 5_000 }).catch(() => {});
      const deadline = new Promise<"late">((resolve) => setTimeout(() => resolve("late"), 5_000).unref());
      if ((await Promise.race([exited, deadline])) === "late") {
        this.#child.kill("SIGKILL");
        await exited;
      }
    } finally {
      await fsp.rm(this.dir, { recursive: true, force: true });
      const pids = process.env.VIRTKIT_TEST_PIDS;
      if (pids && this.pid) await fsp.rm(path.join(pids, `tgtd-${this.pid}.pid`), { force: true });
    }
  }

  async #waitReady(): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (this.#child.exitCode !== null) throw new Error(`tgtd exited at start: ${this.#stderr}`);
      try {
        await run("tgtadm", ["-C", String(this.controlPort), "--op", "show", "--mode", "system"], { timeoutMs: 2_000 });
        if (await portOpen(this.port)) return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`tgtd did not come up within 10 s: ${this.#stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
