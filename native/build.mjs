#!/usr/bin/env node
// `npm install` step: builds the optional lseek addon (native/lseek: lseek, posix_fadvise, sync_file_range,
// copy_file_range) with the node-gyp bundled in npm,
// against this Node's own headers. It never fails the install: without the addon, the dir backend finds
// holes by reading, and this prints one line saying so. Never downloads headers: without local ones
// (or an npm `nodedir`), it does not try.
//   VIRTKIT_SKIP_NATIVE=1  skip the build;  VIRTKIT_NATIVE_VERBOSE=1  show node-gyp's output.
import { spawnSync } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const addonDir = join(here, "lseek");
const fallback = "virtkit: native lseek addon not built (%s); the dir backend will find holes by reading files and copy through its own buffers";

function skip(reason) {
  console.log(fallback.replace("%s", reason));
  process.exit(0);
}

/** node-gyp's CLI: npm's own copy (set for lifecycle scripts), else the one beside npm. */
function nodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath) candidates.push(join(dirname(process.env.npm_execpath), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  const prefix = resolve(dirname(realpathSync(process.execPath)), "..");
  candidates.push(join(prefix, "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  return candidates.find((file) => existsSync(file));
}

/** Where this Node's headers are: npm's `nodedir` when set, else `<prefix>/include/node` next to the binary. */
function nodeDir() {
  const configured = process.env.npm_config_nodedir;
  if (configured) return existsSync(join(configured, "include", "node", "node_api.h")) || existsSync(join(configured, "src", "node_api.h")) ? configured : undefined;
  const prefix = resolve(dirname(realpathSync(process.execPath)), "..");
  return existsSync(join(prefix, "include", "node", "node_api.h")) ? prefix : undefined;
}

try {
  if (process.env.VIRTKIT_SKIP_NATIVE === "1") skip("VIRTKIT_SKIP_NATIVE=1");
  if (process.platform !== "linux") skip(`SEEK_DATA/SEEK_HOLE is only used on Linux, this is ${process.platform}`);
  const gyp = nodeGyp();
  if (!gyp) skip("node-gyp not found beside npm");
  const headers = nodeDir();
  if (!headers) skip("no local Node headers, and downloading them is not attempted");
  const verbose = process.env.VIRTKIT_NATIVE_VERBOSE === "1";
  const built = spawnSync(process.execPath, [gyp, "rebuild", `--nodedir=${headers}`], {
    cwd: addonDir,
    // nodedir both ways (flag and env), so node-gyp never looks for a download of headers.
    env: { ...process.env, npm_config_nodedir: headers },
    stdio: verbose ? "inherit" : "pipe",
    encoding: "utf8",
    timeout: 300_000,
  });
  if (built.error) skip(`node-gyp could not run: ${built.error.message}`);
  if (built.status !== 0) {
    const lines = `${built.stderr ?? ""}`.split("\n").map((l) => l.trim()).filter((l) => /error/i.test(l));
    skip(`build failed${lines.length ? `: ${lines[0].slice(0, 160)}` : ""}`);
  }
  const { createRequire } = await import("node:module");
  const addon = createRequire(import.meta.url)(join(addonDir, "build", "Release", "lseek.node"));
  if (typeof addon.lseek !== "function") skip("the built addon exports no lseek");
  console.log("virtkit: built native lseek addon: the dir backend finds holes with SEEK_DATA/SEEK_HOLE and clones with copy_file_range");
} catch (error) {
  skip(`unexpected: ${error instanceof Error ? error.message : String(error)}`);
}
