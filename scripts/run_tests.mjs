#!/usr/bin/env node
// `npm test`: typecheck, the vitest suites on Node, the same suites on Deno, and the docs build.
// Every step runs even when an earlier one failed, so one run shows everything; the last line is the
// plain `N passed, N failed` summing every suite (typecheck and docs count as one check each).
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const bin = (name) => join(root, "node_modules", ".bin", name);
const resultsDir = join(root, ".test-results");
rmSync(resultsDir, { recursive: true, force: true });
mkdirSync(resultsDir, { recursive: true });

function run(command, args, { capture = false, env = {} } = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const forward = (stream, target) =>
      stream.on("data", (chunk) => {
        target.write(chunk);
        if (capture) output += chunk.toString();
      });
    forward(child.stdout, process.stdout);
    forward(child.stderr, process.stderr);
    child.on("error", (error) => resolve({ code: 127, output: String(error) }));
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

const totals = { passed: 0, failed: 0, skipped: 0 };
const steps = [];
function record(name, passed, failed, skipped = 0) {
  totals.passed += passed;
  totals.failed += failed;
  totals.skipped += skipped;
  steps.push(`${name}: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
}

console.log("== typecheck (tsc --noEmit)");
const typecheck = await run(bin("tsc"), ["-p", "tsconfig.json", "--noEmit"]);
record("typecheck", typecheck.code === 0 ? 1 : 0, typecheck.code === 0 ? 0 : 1);

console.log("== vitest on Node");
const vitestJson = join(resultsDir, "vitest.json");
const vitest = await run(bin("vitest"), ["run", "--reporter=default", "--reporter=json", `--outputFile.json=${vitestJson}`]);
try {
  const report = JSON.parse(readFileSync(vitestJson, "utf8"));
  // A file that fails outside any test (an import error, a failing hook) counts once; a file whose
  // tests failed is already counted through them.
  const brokenFiles = report.testResults.filter(
    (file) => file.status === "failed" && !file.assertionResults.some((test) => test.status === "failed"),
  ).length;
  record("node (vitest)", report.numPassedTests, report.numFailedTests + brokenFiles, report.numPendingTests + (report.numTodoTests ?? 0));
} catch {
  record("node (vitest)", 0, 1);
}
if (vitest.code !== 0 && totals.failed === 0) record("node (vitest) exit code", 0, 1);

console.log("== the same suites on Deno");
const deno = await run(bin("deno"), ["test", "--allow-all", "--no-check", "test/"], {
  capture: true,
  env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
});
const summary = /(?:ok|FAILED) \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \((\d+) steps?\))?(?: \| (\d+) ignored)?/.exec(deno.output);
if (summary) {
  record("deno", Number(summary[1]), Number(summary[3]) + (deno.code !== 0 && Number(summary[3]) === 0 ? 1 : 0), Number(summary[5] ?? 0));
} else {
  record("deno", 0, 1);
}

console.log("== docs (TypeDoc, validation warnings are errors)");
const docs = await run(bin("typedoc"), []);
record("docs", docs.code === 0 ? 1 : 0, docs.code === 0 ? 0 : 1);

console.log("\n== summary");
for (const line of steps) console.log(`  ${line}`);
console.log(`${totals.passed} passed, ${totals.failed} failed${totals.skipped ? `, ${totals.skipped} skipped` : ""}`);
process.exit(totals.failed === 0 ? 0 : 1);
