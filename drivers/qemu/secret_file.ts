/**
 * Passwords handed to QEMU and qemu-img without showing them: a `secret` object reads its data from a
 * file (`-object secret,id=ID,file=PATH,format=raw`), so argv (what `ps` and `/proc/PID/cmdline` show)
 * holds only the path. The file is 0600 in a directory only we can enter, and is removed as soon as the
 * program has read it: QEMU keeps the object in memory, and later `blockdev-add`s name it by id.
 *
 * @module
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * The `-object` / `--object` argument of a secret read from a file.
 *
 * @param id The object's id.
 * @param file The file holding the password (its bytes as they are).
 * @returns `secret,id=ID,file=PATH,format=raw`, with commas in the path doubled as QEMU's option syntax wants.
 * @example
 * ```ts
 * import { secretObjectArg } from "./secret_file.ts";
 * if (secretObjectArg("vda-1-secret", "/run/a,b") !== "secret,id=vda-1-secret,file=/run/a,,b,format=raw") throw new Error("unexpected");
 * ```
 */
export function secretObjectArg(id: string, file: string): string {
  return `secret,id=${id},file=${file.replaceAll(",", ",,")},format=raw`;
}

/**
 * Writes a password to a new 0600 file (failing if the file exists, so nothing else's file is reused).
 *
 * @param file Where.
 * @param password The password.
 * @example
 * ```ts
 * import { writeSecretFile } from "./secret_file.ts";
 * import { mkdtempSync, rmSync, statSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const dir = mkdtempSync(join(tmpdir(), "virtkit-doc-"));
 * try {
 *   await writeSecretFile(join(dir, "s"), "sesame");
 *   if ((statSync(join(dir, "s")).mode & 0o777) !== 0o600) throw new Error("unexpected");
 * } finally {
 *   rmSync(dir, { recursive: true, force: true });
 * }
 * ```
 */
export async function writeSecretFile(file: string, password: string): Promise<void> {
  await writeFile(file, password, { mode: 0o600, flag: "wx" });
}

/**
 * Runs `use` with the passwords in 0600 files of a private temporary directory (0700), removed afterwards
 * whatever `use` does.
 *
 * @param secrets Password by secret id.
 * @param use Gets the file of each id.
 * @returns What `use` returns.
 * @example
 * ```ts
 * import { withSecretFiles } from "./secret_file.ts";
 * import { existsSync, readFileSync } from "node:fs";
 * let seen = "";
 * const file = await withSecretFiles(new Map([["s0", "sesame"]]), async (files) => {
 *   seen = readFileSync(files.get("s0")!, "utf8");
 *   return files.get("s0")!;
 * });
 * if (seen !== "sesame" || existsSync(file)) throw new Error("unexpected");
 * ```
 */
export async function withSecretFiles<T>(secrets: ReadonlyMap<string, string>, use: (files: ReadonlyMap<string, string>) => Promise<T>): Promise<T> {
  if (secrets.size === 0) return await use(new Map());
  const dir = await mkdtemp(join(tmpdir(), "virtkit-secret-"));
  try {
    const files = new Map<string, string>();
    for (const [id, password] of secrets) {
      const file = join(dir, id);
      await writeSecretFile(file, password);
      files.set(id, file);
    }
    return await use(files);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
