/**
 * A {@linkcode PoolConfigStore} on disk: one JSON file per pool definition in `<stateDir>/pools/`
 * (libvirt keeps one XML file per pool in its config directory), so definitions survive a restart.
 *
 * @module
 */
import path from "node:path";
import { VirtError } from "../../core/errors.ts";
import type { PoolConfigStore } from "../../core/storage/pool_config_store.ts";
import type { PoolConfig } from "../../core/storage_pool.ts";
import { assertName } from "../../core/validate.ts";
import { type DirFs, errnoOf, nodeDirFs } from "./dir_fs.ts";

/** What one file holds: the definition and its place in definition order. */
interface SavedPool {
  version: 1;
  position: number;
  config: PoolConfig;
}

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
 * await createPoolConfigFileStore(stateDir).save([{ name: "images", type: "dir", path: "/srv/images" }]);
 * const configs = await createPoolConfigFileStore(stateDir).load();
 * await fsp.rm(stateDir, { recursive: true });
 * if (configs.length !== 1 || configs[0]!.name !== "images") throw new Error("unexpected");
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

  const load = async (): Promise<PoolConfig[]> => {
    const saved: SavedPool[] = [];
    for (const file of await names()) {
      if (!file.endsWith(SUFFIX)) continue;
      const full = path.join(dir, file);
      let parsed: Partial<SavedPool>;
      try {
        parsed = JSON.parse(await fs.readFile(full, "utf8")) as Partial<SavedPool>;
      } catch (error) {
        throw corrupt(full, "it is not valid JSON", error);
      }
      const config = parsed?.config;
      if (parsed?.version !== 1 || typeof parsed.position !== "number" || typeof config !== "object" || config === null) {
        throw corrupt(full, "expected { version: 1, position, config }");
      }
      if (`${config.name}${SUFFIX}` !== file) throw corrupt(full, `it defines pool ${JSON.stringify(config.name)}, not the one its name says`);
      saved.push(parsed as SavedPool);
    }
    return saved.sort((a, b) => a.position - b.position).map((s) => s.config);
  };

  const save = async (configs: PoolConfig[]): Promise<void> => {
    for (const config of configs) assertName(config?.name, "pool name");
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const keep = new Set<string>();
    for (const [position, config] of configs.entries()) {
      const file = path.join(dir, `${config.name}${SUFFIX}`);
      const temp = `${file}${TEMP_SUFFIX}`;
      const body: SavedPool = { version: 1, position, config };
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
    save: (configs) => {
      if (!Array.isArray(configs)) return Promise.reject(new TypeError("Invalid pool definitions: expected an array"));
      const copy = structuredClone(configs);
      const run = queue.then(() => save(copy));
      queue = run.catch(() => {});
      return run;
    },
  };
}
