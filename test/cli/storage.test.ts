import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { virtkit } from "./_spawn.ts";

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), "vk-cli-storage-"));
const images = join(dir, "images");
// Pool definitions persist in the qemu driver's state directory, so one command defines and the next
// one sees it, as with virsh (the connection needs no QEMU binary: no domain is started).
const uri = `qemu:///session?stateDir=${join(dir, "state")}`;
const vk = (...args: string[]) => virtkit(["-c", uri, ...args]);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("virtkit volume commands (each a fresh test:///default process)", () => {
  it("vol-list, vol-info by name and by path, vol-extents as qemu-img map lists them", async () => {
    expect((await virtkit(["vol-list", "default-pool"])).stdout).toMatch(/ test\.qcow2\s+\/default-pool\/test\.qcow2\s+qcow2\s+256 MiB .* \/default-pool\/template\.img/);
    const byName = JSON.parse((await virtkit(["vol-info", "test.qcow2", "--pool", "default-pool", "--json"])).stdout);
    const byPath = JSON.parse((await virtkit(["vol-info", "/default-pool/test.qcow2", "--json"])).stdout);
    expect(byPath).toEqual(byName);
    expect(byName).toMatchObject({ format: "qcow2", capacityBytes: 256 * MiB, backing: { path: "/default-pool/template.img" } });
    const bare = await virtkit(["vol-info", "test.qcow2"]);
    expect([bare.code, bare.stderr]).toEqual([2, 'virtkit: "test.qcow2" is a volume name: say which pool with --pool POOL, or give its path\n']);
    const extents = JSON.parse((await virtkit(["vol-extents", "test.qcow2", "--pool", "default-pool", "--json"])).stdout);
    expect(extents.reduce((sum: number, e: { length: number }) => sum + e.length, 0)).toBe(256 * MiB);
    expect(extents[0]).toMatchObject({ offset: 0, data: true, depth: 0 });
  });

  it("vol-create-as a thin qcow2 over a backing volume, vol-resize, vol-delete", async () => {
    const created = await virtkit(["vol-create-as", "default-pool", "web1.qcow2", "1G", "--backing-vol", "template.img"]);
    expect([created.code, created.stdout]).toEqual([0, "Vol web1.qcow2 created\n"]);
    const resized = await virtkit(["vol-resize", "test.qcow2", "512M", "--pool", "default-pool"]);
    expect(resized.stdout).toBe("Size of volume 'test.qcow2' successfully changed to 512 MiB\n");
    const shrink = await virtkit(["vol-resize", "test.qcow2", "1M", "--pool", "default-pool"]);
    expect(shrink.code).toBe(1);
    expect(shrink.stderr).toMatch(/^error: .*shrink/i);
    expect((await virtkit(["vol-delete", "test.qcow2", "--pool", "default-pool"])).stdout).toBe("Vol test.qcow2 deleted\n");
  });

  it("vol-upload a local file, vol-download into a sparse local file, vol-clone, vol-wipe", async () => {
    const local = join(dir, "local.raw");
    writeFileSync(local, new Uint8Array(2 * MiB).fill(7));
    expect((await virtkit(["vol-upload", "template.img", local, "--pool", "default-pool", "--bandwidth", "512"])).code).toBe(0);
    const out = join(dir, "test.raw");
    expect((await virtkit(["vol-download", "/default-pool/test.qcow2", out])).code).toBe(0);
    const bytes = readFileSync(out);
    expect(bytes.length).toBe(256 * MiB);
    const allocated = statSync(out).blocks * 512;
    expect(allocated).toBeLessThan(200 * MiB); // zeros stayed holes
    expect(allocated).toBeGreaterThan(0);
    // The seed's runs where they belong: test.qcow2's 0x55 at 160 MiB, the template's 0xaa at 224 MiB, zeros between.
    const run = (from: number, length: number, byte: number) => bytes.subarray(from, from + length).every((b) => b === byte);
    expect([run(160 * MiB, 4 * MiB, 0x55), run(164 * MiB, 60 * MiB, 0), run(224 * MiB, MiB, 0xaa), run(225 * MiB, 31 * MiB, 0)]).toEqual([true, true, true, true]);
    expect((await virtkit(["vol-clone", "test.qcow2", "copy.img", "--pool", "default-pool", "--format", "raw"])).stdout).toBe("job-1 volume-clone completed\n");
    expect((await virtkit(["vol-wipe", "template.img", "--pool", "default-pool"])).stdout).toBe("job-1 volume-wipe completed\n");
  });
});

describe("virtkit pool commands on a dir pool of real files, across processes", () => {
  it("pool-define-as, pool-build, pool-start, pool-list --all, pool-info", async () => {
    expect((await vk("pool-define-as", "images", "dir", "--target", images)).stdout).toBe("Pool images defined\n");
    expect((await vk("pool-list", "--all")).stdout).toMatch(/ images\s+inactive\s+dir/);
    expect((await vk("pool-list")).stdout).not.toContain("images"); // inactive pools only with --all
    expect((await vk("pool-build", "images")).code).toBe(0);
    expect(existsSync(images)).toBe(true);
    expect((await vk("pool-start", "images")).stdout).toBe("Pool images started\n");
    const info = JSON.parse((await vk("pool-info", "images", "--json")).stdout);
    expect(info).toMatchObject({ name: "images", type: "dir", config: { path: images } });
  });

  it("refuses source options that do not fit the pool type, and types that need one", async () => {
    const ran = await vk("pool-define-as", "bad", "dir", "--vg", "vg0");
    expect([ran.code, ran.stderr]).toEqual([2, "virtkit: --vg does not apply to a dir pool (it takes --target)\n"]);
    const bare = await vk("pool-define-as", "bad", "iscsi", "--source-host", "127.0.0.1");
    expect([bare.code, bare.stderr]).toEqual([2, "virtkit: A iscsi pool needs --source-dev\n"]);
  });

  it("pool-autostart marks the pool, which stays active for the next command", async () => {
    const ran = await vk("pool-autostart", "images");
    expect(ran.code).toBe(0);
    expect(ran.stdout).toBe("Pool images marked as autostarted\n");
    expect((await vk("vol-create-as", "images", "base.qcow2", "8M", "--format", "qcow2")).code).toBe(0);
    // qemu-img is the referee of every image virtkit writes (`npm test` needs it; .ci/run installs it).
    expect(execFileSync("qemu-img", ["check", "-f", "qcow2", join(images, "base.qcow2")], { encoding: "utf8" })).toContain("No errors were found");
  });

  it("pool-destroy, pool-delete and pool-undefine", async () => {
    // A pool active when one process ended is active again in the next (libvirt keeps it so too).
    expect((await vk("vol-delete", "base.qcow2", "--pool", "images")).stdout).toBe("Vol base.qcow2 deleted\n");
    const destroyed = await vk("pool-destroy", "images");
    expect([destroyed.code, destroyed.stderr]).toEqual([0, ""]);
    const deleted = await vk("pool-delete", "images");
    expect([deleted.code, deleted.stderr]).toEqual([0, ""]);
    expect(existsSync(images)).toBe(false);
    expect((await vk("pool-undefine", "images")).stdout).toBe("Pool images has been undefined\n");
    expect((await vk("pool-list", "--all", "--json")).stdout).toBe("[]\n");
  });
});
