/**
 * `npm run bench`: every benchmark suite, one after another. Each prints its figures next to a reference
 * measured in the same run, with the ratio; quote ratios from one run, the machines are shared and noisy.
 * `npm run bench -- copy` runs only the suites whose name contains "copy".
 *
 * @module
 */
import process from "node:process";

const SUITES: Record<string, () => Promise<{ run(): Promise<void> }>> = {
  "event-bus": () => import("./event_bus.bench.ts"),
  "copy-loop": () => import("./copy_loop.bench.ts"),
  "rate-limiter": () => import("./rate_limiter.bench.ts"),
  "dir-clone": () => import("./dir_clone.bench.ts"),
  "image-engine": () => import("./image_engine.bench.ts"),
  "qemu-pull": () => import("./qemu_pull.bench.ts"),
  "qemu-block-jobs": () => import("./qemu_block_jobs.bench.ts"),
  "qemu-block-jobs-mirror": () => import("./qemu_mirror.bench.ts"),
  "iscsi-clone": () => import("./iscsi_clone.bench.ts"),
  "remote": () => import("./remote.bench.ts"),
  "remote-download": () => import("./remote_download.bench.ts"),
  "virtkitd": () => import("./virtkitd.bench.ts"),
};

const filter = process.argv[2];
for (const [name, load] of Object.entries(SUITES)) {
  if (filter && !name.includes(filter)) continue;
  console.log(`\n## ${name}`);
  await (await load()).run();
}
