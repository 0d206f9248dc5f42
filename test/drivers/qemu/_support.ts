/**
 * Shared pieces of the `qemu` driver's real-QEMU suites: the peer check (skip locally, fail under
 * CI=true), scratch state directories whose QEMU processes are always killed, small test images, and a
 * registry with the driver.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createDefaultRegistry } from "../../../mod.ts";
import type { Connection } from "../../../core/connection.ts";
import type { DomainConfig } from "../../../core/domain.ts";
import type { Registry } from "../../../core/registry.ts";
import { dirBackend } from "../../../drivers/dir/mod.ts";
import { qemuDriver } from "../../../drivers/qemu/mod.ts";
import { findExecutable } from "../../../drivers/qemu/qmp/testing/mod.ts";

export const MiB = 1024 * 1024;
const TOOLS = ["qemu-system-x86_64", "qemu-img", "qemu-io"];
/** Tools this machine lacks. */
export const missingTools = TOOLS.filter((tool) => findExecutable(tool) === undefined);
/** Skip the real-QEMU cases locally when QEMU is missing; under CI=true they run (and fail). */
export const skipReal = missingTools.length > 0 && process.env.CI !== "true";

/** A registry with the built-ins, the qemu driver and the dir backend. */
export function qemuRegistry(): Registry {
  const registry = createDefaultRegistry();
  if (!registry.list("hypervisor").some((entry) => entry.name === "qemu")) registry.register(qemuDriver);
  if (!registry.list("storage").some((entry) => entry.name === "dir")) registry.register(dirBackend);
  return registry;
}

/** Kills every QEMU a state directory's run records name (test cleanup). */
export function killAll(stateDir: string): void {
  let files: string[] = [];
  try {
    files = readdirSync(join(stateDir, "run")).filter((f) => f.endsWith(".json"));
  } catch {
    return;
  }
  for (const file of files) {
    try {
      const { pid } = JSON.parse(readFileSync(join(stateDir, "run", file), "utf8")) as { pid: number };
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
}

/** A scratch directory with a state directory; `cleanup()` kills its QEMUs, closes connections and removes it. */
export class Scratch {
  readonly dir = mkdtempSync(join(tmpdir(), "vk-qemu-"));
  readonly stateDir = join(this.dir, "state");
  readonly registry = qemuRegistry();
  readonly #conns: Connection[] = [];

  /** Opens a connection on the state directory. */
  async connect(): Promise<Connection> {
    if (missingTools.length > 0) throw new Error(`The real-QEMU suite needs ${missingTools.join(", ")} on PATH (CI=true forbids skipping)`);
    const conn = await this.registry.connect("qemu:///session", { stateDir: this.stateDir });
    this.#conns.push(conn);
    return conn;
  }

  /** Kills the QEMUs, closes the connections, removes the directory. */
  async cleanup(): Promise<void> {
    killAll(this.stateDir);
    for (const conn of this.#conns.splice(0)) await conn.close().catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * A raw base image (data in every other MiB, holes between) and a qcow2 overlay with data of its own,
   * plus `ref.raw`: the overlay's guest-visible content, for `qemu-img compare` after a pull.
   */
  images(sizeMiB = 64): { base: string; overlay: string; ref: string } {
    const base = join(this.dir, "base.raw");
    const overlay = join(this.dir, "overlay.qcow2");
    const ref = join(this.dir, "ref.raw");
    execFileSync("qemu-img", ["create", "-q", "-f", "raw", base, `${sizeMiB}M`]);
    const writes: string[] = [];
    for (let mib = 0; mib < sizeMiB; mib += 2) writes.push("-c", `write -q -P ${(mib % 250) + 1} ${mib}M 1M`);
    execFileSync("qemu-io", ["-f", "raw", ...writes, base]);
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", overlay]);
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -q -P 0xab 0 4M", "-c", `write -q -P 0xcd ${sizeMiB / 2}M 1M`, overlay]);
    execFileSync("qemu-img", ["convert", "-O", "raw", overlay, ref]);
    return { base, overlay, ref };
  }
}

/** A domain QEMU can start without a guest OS (`-machine none`). */
export function domainConfig(name: string, disks: DomainConfig["disks"] = []): DomainConfig {
  return { name, vcpus: 1, memoryBytes: 64 * MiB, machine: "none", disks };
}

/** Runs `qemu-img check` and `qemu-img compare`; returns their exit codes and output. */
export function verifyImage(image: string, ref: string): { check: number; compare: number; output: string } {
  const run = (args: string[]) => {
    try {
      return { code: 0, out: execFileSync("qemu-img", args, { encoding: "utf8" }) };
    } catch (error) {
      const e = error as { status: number; stdout: string; stderr: string };
      return { code: e.status, out: `${e.stdout}${e.stderr}` };
    }
  };
  const check = run(["check", "-q", image]);
  const compare = run(["compare", "-q", "-f", "qcow2", "-F", "raw", image, ref]);
  return { check: check.code, compare: compare.code, output: check.out + compare.out };
}

/** The backing file an image's header names, if any. */
export function backingOf(image: string): string | undefined {
  const info = JSON.parse(execFileSync("qemu-img", ["info", "-U", "--output=json", image], { encoding: "utf8" })) as { "backing-filename"?: string };
  return info["backing-filename"];
}

/** Polls `condition` every 10 ms until it holds or `timeoutMs` passes. */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
