/**
 * A {@linkcode PoolConfigStore} on disk: one JSON file per pool definition in `<stateDir>/pools/`
 * (libvirt keeps one XML file per pool in its config directory), with the pool's autostart flag and
 * whether it was active, so definitions and active pools survive a restart. Each file also records the
 * host's boot id (`/proc/sys/kernel/random/boot_id`): a pool saved in an earlier boot comes back with
 * `hostRestarted`, so only autostart pools start again after a reboot, as with libvirt.
 *
 * @module
 */
import path from "node:path";
import { VirtError } from "../../core/errors.ts";
import type { PoolConfigStore, SavedPool } from "../../core/storage/pool_config_store.ts";
import type { PoolConfig } from "../../core/storage_pool.ts";
import { assertName } from "../../core/validate.ts";
import { type DirFs, errnoOf, nodeDirFs } from "./dir_fs.ts";

/**
 * What one file holds: the definition, its place in definition order, and its state. Files written
 * before `autostart` and `active` existed lack them: such a pool is neither.
 */
interface PoolFile {
  version: 1;
  position: number;
  config: PoolConfig;
  autostart?: boolean;
  active?: boolean;
  /** The host's boot id when it was saved (absent where the host has none). */
  bootId?: string;
}

/** Where Linux names the current boot; another value than a file's means the host rebooted since. */
const BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id";

const SUFFIX = ".json";
const TEMP_SUFFIX = ".tmp";

function corrupt(file: string, why: string, cause?: unknown): VirtError {
  return new VirtError("internal", `Cannot load pool definition "${file}": ${why}`, { driver: "dir", ...(cause === undefined ? {} : { cause }) });
}

/**
 * Makes a store keeping pool definitions in `<stateDir>/pools/<name>.json`. `save` writes each file
 * through a temporary file and `rename` (a reader never sees half a definition) and removes the files of
 * pools no longer defined; `load` returns them in definition order. A file that does not parse, or whose
 * pool name does not match its file name, fails `load` with a `VirtError` naming the file, rather than
 * silently dropping a definition.
 *
 * @param stateDir The connection's state directory (created on the first save).
 * @param fs File system calls (a test seam; default the real ones).
 * @returns The store.
 * @example
 * ```ts
 * import fsp from "node:fs/promises";
 * import os from "node:os";
 * import path from "node:path";
 * import { createPoolConfigFileStore } from "./pool_config_file_store.ts";
 * const stateDir = await fsp.mkdtemp(path.join(os.tmpdir(), "state-"));
 * try {
 *   const config = { name: "images", type: "dir", path: "/srv/images" } as const;
 *   await createPoolConfigFileStore(stateDir).save([{ config, autostart: false, active: true }]);
 *   const saved = await createPoolConfigFileStore(stateDir).load();
 *   if (saved.length !== 1 || saved[0]!.config.name !== "images" || !saved[0]!.active) throw new Error("unexpected");
 * } finally {
 *   await fsp.rm(stateDir, { recursive: true, force: true });
 * }
 * ```
 */
export function createPoolConfigFileStore(stateDir: string, fs: DirFs = nodeDirFs): PoolConfigStore {
  if (typeof stateDir !== "string" || !path.isAbsolute(stateDir) || stateDir.includes("\0")) {
    throw new TypeError(`Invalid state directory ${JSON.stringify(stateDir)}: expected an absolute path without NUL`);
  }
  const dir = path.join(stateDir, "pools");
  // Saves run one at a time, so two quick defines cannot interleave their renames and removals.
  let queue: Promise<unknown> = Promise.resolve();

  const names = async (): Promise<string[]> => {
    try {
      return (await fs.readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
    } catch (error) {
      if (errnoOf(error) === "ENOENT") return [];
      throw error;
    }
  };

  // Read once per store: the boot id cannot change while this process runs.
  let bootId: Promise<string | undefined> | undefined;
  const currentBootId = () =>
    (bootId ??= fs.readFile(BOOT_ID_FILE, "utf8").then((text) => String(text).trim() || undefined, () => undefined));

  const load = async (): Promise<SavedPool[]> => {
    const boot = await currentBootId();
    const saved: PoolFile[] = [];
    for (const file of await names()) {
      if (!file.endsWith(SUFFIX)) continue;
      const full = path.join(dir, file);
      let parsed: Partial<PoolFile>;
      try {
        parsed = JSON.parse(await fs.readFile(full, "utf8")) as Partial<PoolFile>;
      } catch (error) {
        throw corrupt(full, "it is not valid JSON", error);
      }
      const config = parsed?.config;
      if (parsed?.version !== 1 || typeof parsed.position !== "number" || typeof config !== "object" || config === null) {
        throw corrupt(full, "expected { version: 1, position, config }");
      }
      for (const flag of ["autostart", "active"] as const) {
        if (parsed[flag] !== undefined && typeof parsed[flag] !== "boolean") throw corrupt(full, `${flag} must be true or false`);
      }
      if (`${config.name}${SUFFIX}` !== file) throw corrupt(full, `it defines pool ${JSON.stringify(config.name)}, not the one its name says`);
      saved.push(parsed as PoolFile);
    }
    return saved.sort((a, b) => a.position - b.position)
      .map((s) => {
        const hostRestarted = boot !== undefined && s.bootId !== undefined && s.bootId !== boot;
        return { config: s.config, autostart: s.autostart === true, active: s.active === true && !hostRestarted, ...(hostRestarted ? { hostRestarted } : {}) };
      });
  };

  const save = async (pools: SavedPool[]): Promise<void> => {
    for (const pool of pools) assertName(pool?.config?.name, "pool name");
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const boot = await currentBootId();
    const keep = new Set<string>();
    for (const [position, { config, autostart, active }] of pools.entries()) {
      const file = path.join(dir, `${config.name}${SUFFIX}`);
      const temp = `${file}${TEMP_SUFFIX}`;
      const body: PoolFile = { version: 1, position, config, autostart: autostart === true, active: active === true, ...(boot ? { bootId: boot } : {}) };
      await fs.writeFile(temp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
      await fs.rename(temp, file);
      keep.add(path.basename(file));
    }
    for (const file of await names()) {
      if ((file.endsWith(SUFFIX) || file.endsWith(TEMP_SUFFIX)) && !keep.has(file)) await fs.unlink(path.join(dir, file)).catch(() => {});
    }
  };

  return {
    load: () => {
      const run = queue.then(load);
      queue = run.catch(() => {});
      return run;
    },
    save: (pools) => {
      if (!Array.isArray(pools)) return Promise.reject(new TypeError("Invalid pool definitions: expected an array"));
      const copy = structuredClone(pools);
      const run = queue.then(() => save(copy));
      queue = run.catch(() => {});
      return run;
    },
  };
}
