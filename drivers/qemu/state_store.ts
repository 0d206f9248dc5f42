/**
 * What a `qemu:` connection keeps on disk: domain definitions (`<stateDir>/domains/<name>.json`) and,
 * for each running domain, its run record (`<stateDir>/run/<name>.json`: pid, QMP socket, disk nodes and
 * block jobs), so a later connection finds the QEMU processes again. Every write is atomic (a temporary
 * file renamed over the old one), so a crash never leaves half a definition.
 *
 * @module
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { DomainConfig } from "../../core/domain.ts";
import type { DiskSource } from "../../core/driver.ts";
import type { JobInfo } from "../../core/job.ts";
import type { ImageLayer } from "./disk_chain.ts";

/** One disk of a running domain, as its run record keeps it. */
export interface RunDisk {
  /** Guest target (`"vda"`). */
  readonly target: string;
  /** The image chain, top first, each with its QEMU node names. */
  readonly layers: readonly ImageLayer[];
  /** The pool volume behind the disk, when it is one. */
  readonly volume?: { readonly pool: string; readonly name: string };
}

/** A block job of a running domain, as its run record keeps it (for re-attaching after a restart). */
export interface RunJob {
  /** Job id (the virtkit id, which is also the QMP `job-id`). */
  readonly id: string;
  /** Disk target it works on. */
  readonly disk: string;
  /** Bytes of the whole range. */
  readonly endBytes: number;
  /** Cap in force, bytes per second. */
  readonly bandwidth: number;
  /** Node name of the base kept below the pull, when there is one. */
  readonly baseNode?: string;
  /** Job type (absent: `"block-pull"`, as records from before copy and commit). */
  readonly type?: "block-pull" | "block-copy" | "block-commit";
  /** Whether it waits in `ready` for `finalize()` (copy, active commit). */
  readonly twoPhase?: boolean;
  /** The disk's image chain once the job completed (absent: a pull's, worked out from `baseNode`). */
  readonly layersAfter?: readonly ImageLayer[];
  /** The disk's definition once a pivot completed. */
  readonly sourceAfter?: DiskSource;
  /** Nodes removed after a successful pivot (the images the disk no longer uses). */
  readonly dropNodes?: readonly string[];
  /** Nodes removed when the job ends without a pivot (a copy's destination). */
  readonly targetNodes?: readonly string[];
  /** A destination the job created, removed when it is aborted before `ready`. */
  readonly createdDestination?: { readonly pool: string; readonly name: string } | { readonly path: string };
  /** Images removed once the job completed (a commit with `deleteCommitted`). */
  readonly deleteAfter?: ReadonlyArray<{ readonly pool: string; readonly name: string } | { readonly path: string }>;
}

/** What a running domain's run file holds. */
export interface RunRecord {
  /** QEMU's process id. */
  readonly pid: number;
  /** The QMP socket path. */
  readonly socket: string;
  /** The disks with their node names. */
  readonly disks: readonly RunDisk[];
  /** Block jobs started through virtkit and not yet dismissed. */
  readonly jobs: readonly RunJob[];
}

/**
 * The default state directory of `qemu:///session`: `~/.local/state/virtkit/qemu`.
 *
 * @returns The path.
 * @example
 * ```ts
 * import { defaultStateDir } from "./state_store.ts";
 * if (!defaultStateDir().endsWith("/virtkit/qemu")) throw new Error("unexpected");
 * ```
 */
export function defaultStateDir(): string {
  return join(homedir(), ".local", "state", "virtkit", "qemu");
}

/** Encodes a domain name as a file name: names may hold any character but `/` and NUL. */
function fileName(name: string): string {
  return `${encodeURIComponent(name).replace(/^\./, "%2E")}.json`;
}

/**
 * The files of one state directory.
 *
 * @example
 * ```ts
 * import { StateStore } from "./state_store.ts";
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const dir = mkdtempSync(join(tmpdir(), "virtkit-doc-"));
 * try {
 *   const store = new StateStore(dir);
 *   await store.init();
 *   await store.saveDomain({ name: "web1", uuid: crypto.randomUUID(), vcpus: 1, memoryBytes: 1 << 26, disks: [] });
 *   if ((await store.loadDomains())[0]?.name !== "web1") throw new Error("unexpected");
 * } finally {
 *   rmSync(dir, { recursive: true, force: true });
 * }
 * ```
 */
export class StateStore {
  /** The state directory. */
  readonly dir: string;
  /** The definition order of each domain this store loaded or saved, so an update need not read it back. */
  readonly #orders = new Map<string, number>();

  /**
   * Names the state directory; nothing is touched until {@linkcode StateStore.init}.
   *
   * @param dir The state directory.
   */
  constructor(dir: string) {
    this.dir = dir;
  }

  /** Creates `domains/` and `run/` when missing. */
  async init(): Promise<void> {
    await mkdir(join(this.dir, "domains"), { recursive: true });
    await mkdir(join(this.dir, "run"), { recursive: true });
    await mkdir(join(this.dir, "jobs"), { recursive: true });
  }

  /**
   * The QMP socket path of a domain: in `run/`, or in the system's temporary directory when that path
   * would pass the 107-byte limit of unix socket paths (run records keep the path, so either is found).
   */
  socketPath(uuid: string): string {
    const inRun = join(this.dir, "run", `${uuid}.qmp`);
    return new TextEncoder().encode(inRun).length <= 100 ? inRun : join(tmpdir(), `virtkit-${uuid}.qmp`);
  }

  /** Where QEMU's stdout and stderr go for a domain. */
  logPath(uuid: string): string {
    return join(this.dir, "run", `${uuid}.log`);
  }

  /** Every saved definition, oldest first (by their `definedAt` order field). */
  async loadDomains(): Promise<Array<DomainConfig & { uuid: string }>> {
    const dir = join(this.dir, "domains");
    const entries = (await readdir(dir)).filter((f) => f.endsWith(".json"));
    const loaded: Array<{ order: number; config: DomainConfig & { uuid: string } }> = [];
    for (const entry of entries) {
      const text = await readFile(join(dir, entry), "utf8").catch(() => undefined);
      if (text === undefined) continue;
      const { order, config } = JSON.parse(text) as { order: number; config: DomainConfig & { uuid: string } };
      loaded.push({ order, config });
      this.#orders.set(config.name, order);
    }
    return loaded.sort((a, b) => a.order - b.order).map((l) => l.config);
  }

  /** Saves a definition atomically. */
  async saveDomain(config: DomainConfig & { uuid: string }, order = Date.now()): Promise<void> {
    await atomicWrite(join(this.dir, "domains", fileName(config.name)), JSON.stringify({ order, config }, null, 2));
    this.#orders.set(config.name, order);
  }

  /**
   * Rewrites a saved definition in place, keeping its place in the definition order. The order is the
   * one this store loaded or saved, so the write (a pivot's, on the way to the job completing) does not
   * read the file back first; a definition this store never saw has its order read from the file.
   */
  async updateDomain(config: DomainConfig & { uuid: string }): Promise<void> {
    const path = join(this.dir, "domains", fileName(config.name));
    const order = this.#orders.get(config.name) ?? (JSON.parse(await readFile(path, "utf8")) as { order: number }).order;
    await atomicWrite(path, JSON.stringify({ order, config }, null, 2));
    this.#orders.set(config.name, order);
  }

  /** Removes a definition. */
  async removeDomain(name: string): Promise<void> {
    await rm(join(this.dir, "domains", fileName(name)), { force: true });
    this.#orders.delete(name);
  }

  /** A running domain's record, if there is one. */
  async loadRun(name: string): Promise<RunRecord | undefined> {
    const text = await readFile(join(this.dir, "run", fileName(name)), "utf8").catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as RunRecord);
  }

  /** Saves a running domain's record atomically. */
  async saveRun(name: string, record: RunRecord): Promise<void> {
    await atomicWrite(join(this.dir, "run", fileName(name)), JSON.stringify(record, null, 2));
  }

  /** Removes a domain's run record, socket and log. */
  async removeRun(name: string, uuid: string): Promise<void> {
    await rm(join(this.dir, "run", fileName(name)), { force: true });
    await rm(this.socketPath(uuid), { force: true });
  }

  /** Keeps a finished block job's last snapshot until it is dismissed (`jobs/<id>.json`). */
  async saveFinishedJob(info: JobInfo): Promise<void> {
    await atomicWrite(join(this.dir, "jobs", fileName(info.id)), JSON.stringify(info, null, 2));
  }

  /** The finished block jobs no one has dismissed yet, oldest first. */
  async loadFinishedJobs(): Promise<JobInfo[]> {
    const dir = join(this.dir, "jobs");
    const names = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith(".json"));
    const infos: JobInfo[] = [];
    for (const name of names) {
      const text = await readFile(join(dir, name), "utf8").catch(() => undefined);
      if (text !== undefined) infos.push(JSON.parse(text) as JobInfo);
    }
    return infos.sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Forgets a dismissed job. */
  async removeFinishedJob(id: string): Promise<void> {
    await rm(join(this.dir, "jobs", fileName(id)), { force: true });
  }
}

let tmpCounter = 0;

/** Writes a file through a temporary sibling and a rename, so readers see the old or the new content. */
async function atomicWrite(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${++tmpCounter}.tmp`;
  try {
    await writeFile(tmp, text, { mode: 0o600 });
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}
