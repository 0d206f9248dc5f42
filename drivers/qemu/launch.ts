/**
 * Starting a domain's QEMU: resolve the disks, build the command line, spawn it detached and stopped
 * (`-S`), reach QMP, let the connection adopt the instance (event wiring, run record), then `cont`.
 * Whatever fails on the way kills the process and removes what was made; QEMU's own words (its log)
 * become the error when it said anything.
 *
 * @module
 */
import { readFile, rm } from "node:fs/promises";
import process from "node:process";
import type { DriverContext } from "../../core/driver.ts";
import { CommandError, ConflictError } from "../../core/errors.ts";
import { buildQemuArgs, pickAccelerator, QEMU_BINARY } from "./command_line.ts";
import { resolveDisks } from "./disk_chain.ts";
import type { StoredConfig } from "./domain_table.ts";
import { Instance } from "./instance.ts";
import { connectQmp, launchQemu } from "./process.ts";
import { writeSecretFile } from "./secret_file.ts";
import type { StateStore } from "./state_store.ts";

/** How long `start()` waits for QMP to answer. */
const START_TIMEOUT_MS = 10_000;

/** What {@linkcode launchDomain} needs. */
export interface LaunchOptions {
  /** The domain. */
  readonly config: StoredConfig;
  /** Its state directory. */
  readonly store: StateStore;
  /** The connection's context (storage for pool disks, bus, clock). */
  readonly ctx: DriverContext;
  /** Aborts the start; the process is killed. */
  readonly signal?: AbortSignal;
  /** Takes the instance over before its vCPUs run (wires the end, saves the run record). */
  adopt(inst: Instance): Promise<void>;
  /** Gives up an adopted instance again after a failed start. */
  drop(inst: Instance): void;
}

/**
 * Launches a domain's QEMU and resolves once its vCPUs run.
 *
 * @param options The domain, store, context, signal and adoption hooks.
 * @returns The running instance.
 * @throws {VirtError} When `qemu-system-x86_64` (or `qemu-img`) is not installed, naming the package.
 * @throws {CommandError} When QEMU refuses the command line (its log is the `stderr`).
 * @throws {ConnectError} When QMP does not answer in time.
 * @example A missing disk image fails before QEMU is spawned
 * ```ts
 * import { launchDomain } from "./launch.ts";
 * import { StateStore } from "./state_store.ts";
 * const config = { name: "x", uuid: crypto.randomUUID(), vcpus: 1, memoryBytes: 1 << 26, disks: [{ target: "vda", path: "/nonexistent.qcow2" }] };
 * const error = await launchDomain({ config, store: new StateStore("/tmp"), ctx: {} as never, adopt: async () => {}, drop: () => {} }).catch((e) => e);
 * if (!String(error.message).includes("nonexistent.qcow2")) throw new Error("unexpected");
 * ```
 */
export async function launchDomain(options: LaunchOptions): Promise<Instance> {
  const { config, store, ctx, signal } = options;
  const { name, uuid } = config;
  const secrets = new Map<string, string>();
  const disks = await resolveDisks(config.disks, ctx.storage, { secrets, ...(signal ? { signal } : {}) });
  const socket = store.socketPath(uuid);
  const log = store.logPath(uuid);
  // CHAP passwords of LUN layers: 0600 files beside the socket, gone once QEMU has read them (by the time
  // QMP answers, every -object is made), so they live on only in QEMU's memory.
  const secretFiles = new Map([...secrets.keys()].map((id) => [id, `${socket}.${id}.secret`]));
  const removeSecrets = () => Promise.all([...secretFiles.values()].map((file) => rm(file, { force: true })));
  let launched: Awaited<ReturnType<typeof launchQemu>>;
  let args: string[];
  try {
    await removeSecrets(); // left by a crashed start
    for (const [id, file] of secretFiles) await writeSecretFile(file, secrets.get(id)!);
    args = buildQemuArgs(config, disks, { socket, secretFiles }, await pickAccelerator());
    signal?.throwIfAborted();
    await store.removeRun(name, uuid);
    launched = await launchQemu(QEMU_BINARY, args, log);
  } catch (error) {
    await removeSecrets();
    throw error;
  }
  let exited = false;
  void launched.exited.then(() => (exited = true));
  let inst: Instance | undefined;
  try {
    const qmp = await connectQmp(socket, {
      timeoutMs: START_TIMEOUT_MS,
      clock: ctx.clock,
      alive: () => !exited,
      describe: `Cannot start domain "${name}"`,
      ...(signal ? { signal } : {}),
    });
    await removeSecrets();
    const { bus, clock } = ctx;
    inst = new Instance({ name, pid: launched.pid, socket, qmp, disks, exited: launched.exited, bus, clock, state: "running" });
    await options.adopt(inst);
    await qmp.execute("cont", undefined, signal ? { signal } : {});
    return inst;
  } catch (error) {
    try {
      process.kill(launched.pid, "SIGKILL");
    } catch {
      // it already exited
    }
    await launched.exited;
    await removeSecrets();
    if (inst) {
      await inst.detach();
      options.drop(inst);
    }
    await store.removeRun(name, uuid);
    if (signal?.aborted) throw signal.reason;
    if (error instanceof ConflictError) throw error;
    const stderr = (await readFile(log, "utf8").catch(() => "")).trim();
    if (stderr === "") throw error;
    throw new CommandError({ argv: [QEMU_BINARY, ...args], exitCode: null, stderr, driver: "qemu", cause: error });
  }
}
