/**
 * Debian's virsh 9.0 against virtkitd: pools and volumes on test:///default (its memory pool and a real
 * dir pool it defines), including vol-upload/vol-download compared with cmp, and a sparse download.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../../mod.ts";
import { run, skipDaemon, startVirtkitd, type VirtkitdProcess, virsh } from "./_support/virtkitd.ts";

describe.skipIf(skipDaemon)("virsh storage against virtkitd", () => {
  let daemon: VirtkitdProcess;
  let uri: string;
  let poolDir: string;
  beforeAll(async () => {
    daemon = await startVirtkitd();
    uri = daemon.uri("test:///default");
    poolDir = join(daemon.dir, "pool");
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it("lists and describes the seeded pool and its volumes", async () => {
    const list = await virsh(uri, ["pool-list", "--all"]);
    expect(list.stdout).toMatch(/default-pool\s+active\s+no/);
    const info = await virsh(uri, ["pool-info", "default-pool"]);
    expect(info.stdout).toMatch(/^State:\s+running$/m);
    expect(info.stdout).toMatch(/^Capacity:\s+100\.00 GiB$/m);
    expect(info.stdout).toMatch(/^UUID:\s+[0-9a-f-]{36}$/m);
    const vols = await virsh(uri, ["vol-list", "default-pool"]);
    expect(vols.stdout).toMatch(/test\.qcow2\s+\/default-pool\/test\.qcow2/);
    const vol = await virsh(uri, ["vol-info", "--pool", "default-pool", "test.qcow2"]);
    expect(vol.stdout).toMatch(/^Type:\s+file$/m);
    expect(vol.stdout).toMatch(/^Capacity:\s+256\.00 MiB$/m);
    expect((await virsh(uri, ["vol-path", "--pool", "default-pool", "test.qcow2"])).stdout.trim()).toBe("/default-pool/test.qcow2");
    expect((await virsh(uri, ["vol-key", "--pool", "default-pool", "test.qcow2"])).stdout.trim()).toMatch(/test\.qcow2/);
    // By path, as `vol-info PATH` does (look-up by key, then by path).
    expect((await virsh(uri, ["vol-info", "/default-pool/test.qcow2"])).stdout).toMatch(/^Name:\s+test\.qcow2$/m);
    const missing = await virsh(uri, ["pool-info", "nosuch"]);
    expect(missing.stderr).toMatch(/failed to get pool 'nosuch'/);
  });

  it("an iscsi pool's named CHAP secrets, mutual account included, survive the daemon's XML; start says virtkitd has no secret store", async () => {
    await using conn = await connect(uri);
    const auth = { type: "chap" as const, username: "alice", secret: { usage: "san-chap" }, mutual: { username: "tgt", secret: { usage: "san-tgt" } } };
    // On virtkitd the remote driver sends the mutual account (in virtkit's namespace), which a libvirtd would drop.
    await conn.pools.define({ name: "san-named", type: "iscsi", host: "127.0.0.1", port: 1, target: "iqn.2026-01.org.example:named", auth });
    const dumped = (await virsh(uri, ["pool-dumpxml", "san-named"])).stdout;
    expect(dumped).toContain('<secret usage="san-chap"/>');
    expect(dumped).toContain('<virtkit:mutual_auth username="tgt">');
    expect(await (await conn.pools.get("san-named")).config()).toMatchObject({ auth });
    const start = await virsh(uri, ["pool-start", "san-named"]);
    expect(start.stderr).toContain("no secret store is available locally");
    await (await conn.pools.get("san-named")).undefine();
  });

  it("defines, builds and starts a dir pool, creates, clones, resizes, wipes and deletes volumes", async () => {
    expect((await virsh(uri, ["pool-define-as", "p1", "dir", "--target", poolDir])).stdout).toMatch(/Pool p1 defined/);
    expect((await virsh(uri, ["pool-list", "--all"])).stdout).toMatch(/p1\s+inactive\s+no/);
    expect((await virsh(uri, ["pool-build", "p1"])).stdout).toMatch(/Pool p1 built/);
    expect(statSync(poolDir).isDirectory()).toBe(true);
    expect((await virsh(uri, ["pool-start", "p1"])).stdout).toMatch(/Pool p1 started/);
    expect((await virsh(uri, ["pool-dumpxml", "p1"])).stdout).toMatch(new RegExp(`<path>${poolDir}</path>`));
    expect((await virsh(uri, ["vol-create-as", "p1", "a.qcow2", "10M", "--format", "qcow2"])).stdout).toMatch(/Vol a\.qcow2 created/);
    expect((await virsh(uri, ["vol-clone", "--pool", "p1", "a.qcow2", "b.qcow2"])).stdout).toMatch(/Vol b\.qcow2 cloned from a\.qcow2/);
    const vols = await virsh(uri, ["vol-list", "p1"]);
    expect(vols.stdout).toContain(join(poolDir, "a.qcow2"));
    expect(vols.stdout).toContain(join(poolDir, "b.qcow2"));
    expect((await run("qemu-img", ["info", join(poolDir, "b.qcow2")])).stdout).toMatch(/file format: qcow2/);
    expect((await virsh(uri, ["vol-resize", "--pool", "p1", "b.qcow2", "20M"])).code).toBe(0);
    expect((await virsh(uri, ["vol-info", "--pool", "p1", "b.qcow2"])).stdout).toMatch(/^Capacity:\s+20\.00 MiB$/m);
    expect((await virsh(uri, ["vol-wipe", "--pool", "p1", "b.qcow2"])).stdout).toMatch(/Vol b\.qcow2 wiped/);
    expect((await virsh(uri, ["vol-delete", "--pool", "p1", "b.qcow2"])).stdout).toMatch(/Vol b\.qcow2 deleted/);
    expect((await virsh(uri, ["pool-refresh", "p1"])).stdout).toMatch(/Pool p1 refreshed/);
    expect((await virsh(uri, ["vol-list", "p1"])).stdout).not.toContain("b.qcow2");
    const dup = await virsh(uri, ["vol-create-as", "p1", "a.qcow2", "1M"]);
    expect(dup.code).not.toBe(0);
  });

  it("uploads and downloads a volume's bytes (compared with cmp)", async () => {
    const input = join(daemon.dir, "in.bin");
    const output = join(daemon.dir, "out.bin");
    writeFileSync(input, randomBytes(6 * 1024 * 1024 + 123));
    expect((await virsh(uri, ["vol-create-as", "p1", "data.raw", "6291579", "--format", "raw"])).code).toBe(0);
    const up = await virsh(uri, ["vol-upload", "--pool", "p1", "data.raw", input]);
    expect(up.stderr).toBe("");
    expect((await run("cmp", [input, join(poolDir, "data.raw")])).code).toBe(0);
    const down = await virsh(uri, ["vol-download", "--pool", "p1", "data.raw", output]);
    expect(down.stderr).toBe("");
    expect((await run("cmp", [input, output])).code).toBe(0);
    // A range: 1000 bytes from offset 4096.
    const part = join(daemon.dir, "part.bin");
    expect((await virsh(uri, ["vol-download", "--pool", "p1", "data.raw", part, "--offset", "4096", "--length", "1000"])).code).toBe(0);
    expect(readFileSync(part).equals(readFileSync(input).subarray(4096, 5096))).toBe(true);
  });

  it("sends a sparse volume's zero runs as holes to `vol-download --sparse` and to virtkit's remote driver", async () => {
    expect((await virsh(uri, ["vol-create-as", "p1", "sparse.raw", "8M", "--format", "raw"])).code).toBe(0);
    const path = join(poolDir, "sparse.raw");
    expect((await run("qemu-io", ["-f", "raw", "-c", "write -q -P 7 1M 1M", "-c", "write -q -P 9 7M 4K", path])).code).toBe(0);
    const expected = readFileSync(path);
    const output = join(daemon.dir, "sparse-out.raw");
    const down = await virsh(uri, ["vol-download", "--sparse", "--pool", "p1", "sparse.raw", output]);
    expect(down.stderr).toBe("");
    expect(readFileSync(output).equals(expected)).toBe(true);
    // virsh seeks over the holes it is sent and writes the data it is sent: zeros sent as data would fill the file.
    expect(statSync(output).blocks * 512).toBeLessThan(4 * 1024 * 1024);
    await using conn = await connect(uri);
    const job = await (await (await conn.pools.get("p1")).volumes.get("sparse.raw")).download({ offset: 4096, length: 7 * 1024 * 1024 });
    const got = Buffer.from(await new Response(job.readable).arrayBuffer());
    await job.wait();
    expect(got.equals(expected.subarray(4096, 4096 + 7 * 1024 * 1024))).toBe(true);
    expect((await virsh(uri, ["vol-delete", "--pool", "p1", "sparse.raw"])).code).toBe(0);
  });

  it("stops, deletes and undefines the pool", async () => {
    expect((await virsh(uri, ["pool-destroy", "p1"])).stdout).toMatch(/Pool p1 destroyed/);
    expect((await virsh(uri, ["pool-list", "--all"])).stdout).toMatch(/p1\s+inactive/);
    expect((await virsh(uri, ["pool-undefine", "p1"])).stdout).toMatch(/Pool p1 has been undefined/);
    expect((await virsh(uri, ["pool-list", "--all"])).stdout).not.toMatch(/p1/);
  });
});
