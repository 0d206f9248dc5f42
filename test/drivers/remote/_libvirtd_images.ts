/**
 * Images for the suites that drive a real libvirtd's qemu driver (test/_support/libvirtd.ts): the daemon
 * runs as `nobody`, so every image it opens is handed to `nobody`; a raw base with a byte pattern the
 * referee (`qemu-img compare`) can tell apart; and the clean-up of the domains a suite defined.
 */
import { execFileSync } from "node:child_process";
import { chownSync } from "node:fs";
import type { Connection } from "../../../core/connection.ts";

/** Hands a file to `nobody` (the unprivileged libvirtd's user). @returns The path. */
export function giveToLibvirtd(path: string): string {
  const uid = Number(execFileSync("id", ["-u", "nobody"], { encoding: "utf8" }));
  const gid = Number(execFileSync("id", ["-g", "nobody"], { encoding: "utf8" }));
  chownSync(path, uid, gid);
  return path;
}

/** A raw image of `sizeMiB` with 1 MiB of pattern `n + 1` at every even MiB `n`, given to `nobody`. @returns The path. */
export function patternedBase(path: string, sizeMiB: number): string {
  execFileSync("qemu-img", ["create", "-q", "-f", "raw", path, `${sizeMiB}M`]);
  const writes: string[] = [];
  for (let mib = 0; mib < sizeMiB; mib += 2) writes.push("-c", `write -q -P ${mib + 1} ${mib}M 1M`);
  execFileSync("qemu-io", ["-f", "raw", ...writes, path]);
  return giveToLibvirtd(path);
}

/** Destroys and undefines every domain of a connection, then closes it (suite clean-up; errors ignored). */
export async function removeDomainsAndClose(conn: Connection | undefined): Promise<void> {
  for (const dom of (await conn?.domains.list().catch(() => [])) ?? []) {
    await dom.destroy().catch(() => {});
    await dom.undefine().catch(() => {});
  }
  await conn?.close().catch(() => {});
}
