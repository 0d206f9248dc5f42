/**
 * What the suites of qemu domains on LUNs share: a template written into a LUN's backing file, and a
 * qemu connection on a scratch state directory with an `iscsi` pool "san" (optionally with CHAP) on a
 * running tgtd and a `dir` pool "images".
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import type { IscsiChapAuth } from "../../../core/storage_pool.ts";
import { iscsiBackend } from "../../../drivers/iscsi/mod.ts";
import type { Tgtd } from "../../_support/tgtd.ts";
import { Scratch } from "../qemu/_support.ts";

/** Writes data into every other MiB of a LUN's backing file (holes between), `seed` telling templates apart. */
export function writeTemplate(tgtd: Tgtd, lun: number, sizeMiB: number, seed: number): void {
  const writes: string[] = [];
  for (let mib = 0; mib < sizeMiB; mib += 2) writes.push("-c", `write -q -P ${mib + seed} ${mib}M 1M`);
  execFileSync("qemu-io", ["-f", "raw", ...writes, tgtd.lunFile(lun)]);
}

/** A qemu connection (its scratch kept in `scratches` for cleanup) with pools "san" on the target and "images". */
export async function sanConnection(scratches: Scratch[], tgtd: Tgtd, auth?: IscsiChapAuth) {
  const s = new Scratch();
  scratches.push(s);
  if (!s.registry.list("storage").some((e) => e.name === "iscsi")) s.registry.register(iscsiBackend);
  const conn = await s.connect();
  const san = await conn.pools.create({ name: "san", type: "iscsi", host: "127.0.0.1", port: tgtd.port, target: tgtd.target, ...(auth ? { auth } : {}) });
  const images = await conn.pools.create({ name: "images", type: "dir", path: join(s.dir, "images") });
  return { s, conn, san, images };
}
