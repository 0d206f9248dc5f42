import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { qemu, qemuCheck, skipWithoutQemu, tempDir } from "../_qemu.ts";

const child = fileURLToPath(new URL("./_crash_child.ts", import.meta.url));

/** Runs the writer child until it printed `steps` lines, then SIGKILLs it. */
function runAndKill(image: string, seed: number, steps: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const proc = spawn("node", ["--import", "tsx", child, image, String(seed)], { stdio: ["ignore", "pipe", "pipe"] });
    let seen = 0;
    let stderr = "";
    proc.stdout.setEncoding("utf8");
    proc.stdout.on("data", (chunk: string) => {
      seen += chunk.split("\n").length - 1;
      if (seen >= steps) proc.kill("SIGKILL");
    });
    proc.stderr.on("data", (chunk) => (stderr += String(chunk)));
    proc.on("error", reject);
    proc.on("exit", (code, signal) => {
      if (signal === "SIGKILL") resolve(seen);
      else reject(new Error(`child exited (${code}) before it was killed: ${stderr}`));
    });
  });
}

describe.skipIf(skipWithoutQemu)("qcow2 writes survive SIGKILL at any point", () => {
  let root: { dir: string; cleanup(): void };
  beforeAll(() => {
    root = tempDir("image-crash");
  });
  afterAll(() => root.cleanup());

  for (const [cluster, compat] of [[512, "1.1"], [65536, "1.1"], [4096, "0.10"]] as const) {
    it(`${cluster} B clusters compat=${compat}: qemu-img check finds no corruption after each of 5 kills`, async () => {
      const base = join(root.dir, `base-${cluster}.raw`);
      qemu("qemu-img", "create", "-f", "raw", base, "24M");
      qemu("qemu-io", "-f", "raw", "-c", "write -P 9 0 24M", base);
      const image = join(root.dir, `crash-${cluster}.qcow2`);
      qemu("qemu-img", "create", "-f", "qcow2", "-b", base, "-F", "raw", "-o", `cluster_size=${cluster},compat=${compat}`, image, "24M");
      for (let round = 0; round < 5; round++) {
        const seed = cluster + round * 7919;
        await runAndKill(image, seed, 3 + ((seed * 31) % 40));
        const check = qemuCheck(image);
        // 0: clean; 3: leaked clusters only (allowed). 2 would be corruption, 1 a failed check.
        expect([0, 3], check.output).toContain(check.status);
      }
    }, 120_000);
  }
});
