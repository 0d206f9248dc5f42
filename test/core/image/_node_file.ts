/** Test helpers: a node:fs-backed PositionalFile and qemu-img plumbing shared by the image tests. */
import { open } from "node:fs/promises";
import { execFileSync, spawnSync } from "node:child_process";
import type { PositionalFile } from "../../../core/image/positional_file.ts";

/** Opens a host file as a PositionalFile. */
export async function openNodeFile(path: string, write = false): Promise<PositionalFile> {
  const handle = await open(path, write ? "r+" : "r");
  return {
    async read(offset, target) {
      let done = 0;
      while (done < target.byteLength) {
        const { bytesRead } = await handle.read(target, done, target.byteLength - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done;
    },
    async write(offset, data) {
      let done = 0;
      while (done < data.byteLength) {
        const { bytesWritten } = await handle.write(data, done, data.byteLength - done, offset + done);
        done += bytesWritten;
      }
    },
    async size() {
      return (await handle.stat()).size;
    },
    truncate: (sizeBytes) => handle.truncate(sizeBytes),
    flush: () => handle.sync(),
    close: () => handle.close(),
  };
}

/** Whether qemu-img is installed. */
export const haveQemuImg = spawnSync("qemu-img", ["--version"]).status === 0;
/** Skip qemu-img tests when it is missing, except under CI where they must run. */
export const skipWithoutQemu = !haveQemuImg && process.env.CI !== "true";

/** Runs qemu-img (or qemu-io) and returns stdout; throws with stderr on failure. */
export function qemu(tool: "qemu-img" | "qemu-io", ...args: string[]): string {
  return execFileSync(tool, args, { encoding: "utf8", maxBuffer: 256 << 20 });
}

/** Runs `qemu-img check` and returns its exit code and output (0 clean, 3 leaks only, 2 corruption). */
export function qemuCheck(path: string): { status: number; output: string } {
  const result = spawnSync("qemu-img", ["check", path], { encoding: "utf8" });
  return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}
