/**
 * `resolveCopyDestination` to a bare host path, the one home of a copy's destination file for the offline
 * copy and the `qemu` driver's live one alike: the `dir` backend over the directory makes it with
 * virtkit's image engine (qcow2 alone and over a backing, sparse raw) and `qemu-img check` and `info`
 * accept it; a qcow2 is flushed once, then its directory; the refusals (a file in the way, one that
 * appears between the check and the create, a missing directory or backing) leave nothing behind.
 */
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { realpath } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { LiveBlockCopyRequest } from "../../../core/driver.ts";
import { ConflictError, NotFoundError } from "../../../core/errors.ts";
import { type CopySourceImage, resolveCopyDestination } from "../../../core/domains/copy_destination.ts";
import { createDirBackend } from "../../../drivers/dir/mod.ts";
import { faultyFs } from "../../drivers/dir/_support.ts";
import { hostDirectoryStorage } from "../../_support/host_directory_storage.ts";
import { qemu, qemuCheck, skipWithoutQemu, tempDir } from "../image/_qemu.ts";

const MiB = 1024 * 1024;
const what = `copy disk "vda" of domain "vm"`;
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function scratch(): string {
  const { dir, cleanup } = tempDir("copy-host");
  cleanups.push(cleanup);
  return dir;
}

function request(path: string, extra: Partial<LiveBlockCopyRequest> = {}): LiveBlockCopyRequest {
  return { domain: "vm", disk: { target: "vda", path: "/img/top.qcow2" }, locks: [], bandwidth: 0, destination: { path }, shallow: false, reuseExisting: false, ...extra };
}

const qcow2 = (capacityBytes: number, backing?: CopySourceImage["info"]["backing"]): CopySourceImage => ({
  info: { capacityBytes, format: "qcow2", ...(backing ? { backing } : {}) },
});
const info = (path: string) => JSON.parse(qemu("qemu-img", "info", "--output=json", path)) as Record<string, unknown>;

describe("resolveCopyDestination to a bare host path", () => {
  it.skipIf(skipWithoutQemu)("makes a qcow2 of the disk's size through the dir backend, alone and over a backing: qemu-img check is clean and info agrees", async () => {
    const dir = scratch();
    await using storage = hostDirectoryStorage();
    const alone = join(dir, "copy.qcow2");
    const dest = await resolveCopyDestination(storage, request(alone), { source: qcow2(1024 * MiB), shallow: false, diskByPath: true, what });
    await dest.release();
    expect([dest.path, dest.format, dest.created, dest.capacityBytes]).toEqual([join(await realpath(dir), "copy.qcow2"), "qcow2", true, 1024 * MiB]);
    expect(qemuCheck(alone).status).toBe(0);
    const a = info(alone);
    expect([a.format, a["virtual-size"], a["backing-filename"]]).toEqual(["qcow2", 1024 * MiB, undefined]);

    const base = join(dir, "base.raw");
    writeFileSync(base, new Uint8Array(MiB));
    const top = join(dir, "top.qcow2");
    const shallow = await resolveCopyDestination(storage, request(top, { shallow: true }), {
      source: qcow2(3 * MiB + 100, { path: base, format: "raw" }),
      shallow: true,
      diskByPath: true,
      what,
    });
    await shallow.release();
    expect(qemuCheck(top).status).toBe(0);
    const t = info(top);
    // Rounded up to 512 bytes, as qemu-img create does.
    expect([t.format, t["virtual-size"], t["backing-filename"], t["backing-filename-format"]]).toEqual(["qcow2", 3 * MiB + 512, await realpath(base), "raw"]);
    // Both made by the dir backend's createVolume (virtkit's image engine), once each.
    expect(storage.creates.map((s) => [s.name, s.format, s.capacityBytes, s.backing])).toEqual([
      ["copy.qcow2", "qcow2", 1024 * MiB, undefined],
      ["top.qcow2", "qcow2", 3 * MiB + 100, { path: base, format: "raw" }],
    ]);
  });

  it("a new qcow2 is flushed once (the image engine's fdatasync), then its directory once", async () => {
    const dir = await realpath(scratch());
    const fs = faultyFs({});
    await using storage = hostDirectoryStorage({ backend: createDirBackend({ fs }) });
    const dest = await resolveCopyDestination(storage, request(join(dir, "copy.qcow2")), { source: qcow2(MiB), shallow: false, diskByPath: true, what });
    await dest.release();
    const temp = (line: string) => line.replace(/\.virtkit-tmp-[0-9a-f]+$/, ".virtkit-tmp-*");
    expect(fs.flushes.map(temp)).toEqual([`datasync ${dir}/.virtkit-tmp-*`, `sync ${dir}`]);
  });

  it.skipIf(skipWithoutQemu)("a raw destination is a sparse file of the size", async () => {
    const path = join(scratch(), "copy.raw");
    await using storage = hostDirectoryStorage();
    const dest = await resolveCopyDestination(storage, request(path, { format: "raw" }), { source: qcow2(64 * MiB), shallow: false, diskByPath: true, what });
    await dest.release();
    expect([dest.format, statSync(path).size, statSync(path).blocks]).toEqual(["raw", 64 * MiB, 0]);
    expect(info(path).format).toBe("raw");
  });

  it("refuses a file in the way (untouched), one that appears between the check and the create, and a missing directory or backing, leaving nothing behind", async () => {
    const dir = scratch();
    const taken = join(dir, "taken.qcow2");
    writeFileSync(taken, "mine");
    await using storage = hostDirectoryStorage();
    const facts = { source: qcow2(MiB), shallow: false, diskByPath: true, what };
    const conflict = await resolveCopyDestination(storage, request(taken), facts).catch((e) => e);
    expect(conflict).toBeInstanceOf(ConflictError);
    expect(conflict.message).toBe(`Cannot ${what}: destination "${taken}" exists; pass reuseExisting to copy into it`);
    expect(storage.creates).toEqual([]);

    // The check found nothing; the file is made just before the create: the create's refusal names the path.
    const late = join(dir, "late.qcow2");
    await using racing = hostDirectoryStorage({ beforeCreate: (directory, spec) => writeFileSync(join(directory, spec.name), "theirs") });
    const raced = await resolveCopyDestination(racing, request(late), facts).catch((e) => e);
    expect(raced).toBeInstanceOf(ConflictError);
    expect(raced.message).toBe(`Cannot ${what}: destination "${late}" exists; pass reuseExisting to copy into it`);
    expect(racing.creates.map((s) => s.name)).toEqual(["late.qcow2"]);
    expect(statSync(taken).size).toBe(4);
    expect(statSync(late).size).toBe(6);

    const missingDir = await resolveCopyDestination(storage, request(join(dir, "no", "such.qcow2")), facts).catch((e) => e);
    expect(missingDir).toBeInstanceOf(NotFoundError);
    expect(missingDir.message).toContain(`its directory "${join(dir, "no")}" cannot be used`);
    const shallow = { ...facts, shallow: true, source: qcow2(MiB, { path: join(dir, "gone.raw"), format: "raw" }) };
    const missingBacking = await resolveCopyDestination(storage, request(join(dir, "top.qcow2"), { shallow: true }), shallow).catch((e) => e);
    expect(missingBacking).toBeInstanceOf(NotFoundError);
    expect(readdirSync(dir).sort()).toEqual(["late.qcow2", "taken.qcow2"]);
  });
});
