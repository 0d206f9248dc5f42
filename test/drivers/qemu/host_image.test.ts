/**
 * A block copy's destination at a host path, made by the image engine instead of `qemu-img create`:
 * qcow2 (alone and over a backing) and raw images of the disk's size that `qemu-img check` and `info`
 * accept, and the refusals (a file in the way, a missing directory) that leave nothing behind.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { realpath } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { afterEach, describe, expect, it } from "vitest";
import { ConflictError, NotFoundError } from "../../../core/errors.ts";
import { createHostImage } from "../../../drivers/qemu/host_image.ts";
import { findExecutable } from "../../../drivers/qemu/qmp/testing/mod.ts";
import { MiB } from "./_support.ts";

const noQemuImg = findExecutable("qemu-img") === undefined && process.env.CI !== "true";
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), "vk-host-image-"));
  dirs.push(dir);
  return dir;
}

const info = (path: string) => JSON.parse(execFileSync("qemu-img", ["info", "--output=json", path], { encoding: "utf8" })) as Record<string, unknown>;
const check = (path: string) => execFileSync("qemu-img", ["check", "--output=json", path], { encoding: "utf8" });

describe("createHostImage", () => {
  it.skipIf(noQemuImg)("a qcow2 of the disk's size, alone and over a backing: qemu-img check is clean and info agrees", async () => {
    const dir = scratch();
    const alone = join(dir, "copy.qcow2");
    expect(await createHostImage(alone, { format: "qcow2", capacityBytes: 1024 * MiB })).toBe(join(await realpath(dir), "copy.qcow2"));
    expect(JSON.parse(check(alone))["check-errors"]).toBe(0);
    const a = info(alone);
    expect([a.format, a["virtual-size"], a["backing-filename"]]).toEqual(["qcow2", 1024 * MiB, undefined]);

    const base = join(dir, "base.raw");
    writeFileSync(base, new Uint8Array(MiB));
    const top = join(dir, "top.qcow2");
    await createHostImage(top, { format: "qcow2", capacityBytes: 3 * MiB + 100, backing: { path: base, format: "raw" } });
    expect(JSON.parse(check(top))["check-errors"]).toBe(0);
    const t = info(top);
    // Rounded up to 512 bytes, as qemu-img create does.
    expect([t.format, t["virtual-size"], t["backing-filename"], t["backing-filename-format"]]).toEqual(["qcow2", 3 * MiB + 512, await realpath(base), "raw"]);
  });

  it.skipIf(noQemuImg)("a raw image is a sparse file of the size", async () => {
    const path = join(scratch(), "copy.raw");
    await createHostImage(path, { format: "raw", capacityBytes: 64 * MiB });
    expect([statSync(path).size, statSync(path).blocks]).toEqual([64 * MiB, 0]);
    expect(info(path).format).toBe("raw");
  });

  it("refuses a file in the way (untouched) and a missing directory, leaving nothing behind", async () => {
    const dir = scratch();
    const taken = join(dir, "taken.qcow2");
    writeFileSync(taken, "mine");
    const conflict = await createHostImage(taken, { format: "qcow2", capacityBytes: MiB }).catch((e) => e);
    expect(conflict).toBeInstanceOf(ConflictError);
    expect(conflict.message).toBe(`Cannot create image "${taken}": a file is there`);
    expect(statSync(taken).size).toBe(4);
    const error = await createHostImage(join(dir, "no", "such.qcow2"), { format: "qcow2", capacityBytes: MiB }).catch((e) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.message).toContain(`"${join(dir, "no")}" does not exist`);
    const missingBacking = await createHostImage(join(dir, "top.qcow2"), { format: "qcow2", capacityBytes: MiB, backing: { path: join(dir, "gone.raw"), format: "raw" } }).catch((e) => e);
    expect(missingBacking).toBeInstanceOf(NotFoundError);
    expect(readdirSync(dir)).toEqual(["taken.qcow2"]);
  });
});
