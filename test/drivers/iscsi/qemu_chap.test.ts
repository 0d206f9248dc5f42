/**
 * qemu domains on CHAP-protected LUNs, end to end on real QEMU and a real tgtd with a CHAP account: a
 * qcow2 overlay in a `dir` pool over a LUN volume of an `iscsi` pool with `auth`, started, pulled online,
 * and checked with qemu-img, which reads the LUN through the same kind of secret object
 * (`--object secret,file=` + `--image-opts`). The password must never be on a command line (`ps`), nor
 * left in a file once QEMU has read it; a password the target refuses is a `ConnectError` naming the LUN.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConnectError } from "../../../core/errors.ts";
import { skipIscsi, Tgtd } from "../../_support/tgtd.ts";
import type { StoragePool } from "../../../mod.ts";
import { backingOf, domainConfig, MiB, type Scratch, skipReal, until, verifyImage } from "../qemu/_support.ts";
import { sanConnection, writeTemplate } from "./_qemu_san.ts";

const skip = skipIscsi || skipReal;
const CHAP = { username: "vk-qemu-user", password: "qemu-chap-secret-42" };
const scratches: Scratch[] = [];
afterEach(async () => {
  for (const s of scratches.splice(0)) await s.cleanup();
});

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(() => undefined, (e: unknown) => e);
}

/** Command lines of the processes running from a directory's files (QEMU names its socket there). */
function commandLinesUnder(dir: string): string[] {
  const lines: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const line = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      if (line.includes(dir) && line.includes("qemu-system")) lines.push(line);
    } catch {
      // exited meanwhile
    }
  }
  return lines;
}

/** Files under a directory whose content includes `text`. */
function filesHolding(dir: string, text: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .filter((file) => readFileSync(file, "latin1").includes(text));
}

describe.skipIf(skip)("qemu domains on CHAP-protected iSCSI LUNs", () => {
  let tgtd: Tgtd;
  beforeAll(async () => {
    const luns = [{ lun: 1, sizeBytes: 16 * MiB }, { lun: 2, sizeBytes: 4 * MiB }, { lun: 3, sizeBytes: 4 * MiB }];
    tgtd = await Tgtd.start({ luns, chap: CHAP });
    writeTemplate(tgtd, 1, 16, 7);
  });
  afterAll(() => tgtd?.stop());

  const connection = () => sanConnection(scratches, tgtd, { type: "chap", ...CHAP });

  /** qemu-img's --object/--image-opts arguments for the overlay over the CHAP LUN (the secret in a 0600 file). */
  function imageOpts(s: Scratch, overlay: string, lunNumber = 1): string[] {
    const secret = join(s.dir, "chap.secret");
    writeFileSync(secret, CHAP.password, { mode: 0o600 });
    const lun = [
      "backing.driver=raw", "backing.file.driver=iscsi", "backing.file.transport=tcp", `backing.file.portal=127.0.0.1:${tgtd.port}`,
      `backing.file.target=${tgtd.target}`, `backing.file.lun=${lunNumber}`, `backing.file.user=${CHAP.username}`, "backing.file.password-secret=chap0",
    ];
    return ["--object", `secret,id=chap0,file=${secret},format=raw`, "--image-opts", ["driver=qcow2", `file.filename=${overlay}`, ...lun].join(",")];
  }

  it("pulls a CHAP LUN template into a qcow2 overlay online; the password is never on a command line", async () => {
    const { s, conn, san, images } = await connection();
    const template = await san.volumes.get("unit:0:0:1");
    expect(template.path).not.toContain(CHAP.password);
    const overlay = await images.volumes.create({ name: "web.qcow2", format: "qcow2", capacityBytes: 16 * MiB, backing: { path: template.path, format: "raw" } });
    // Without the account, QEMU's tools cannot read the overlay's backing: the LUN really is protected.
    expect(() => execFileSync("qemu-img", ["check", overlay.path], { stdio: "pipe" })).toThrow(/Authentication failure/);
    const opts = imageOpts(s, overlay.path);
    execFileSync("qemu-io", ["-c", "write -q -P 0xab 0 2M", "-c", "write -q -P 0xcd 9M 1M", ...opts]);
    const ref = join(s.dir, "ref.raw");
    execFileSync("qemu-img", ["convert", ...opts, "-O", "raw", ref]);
    expect(execFileSync("qemu-img", ["check", ...opts], { encoding: "utf8" })).toContain("No errors were found");

    const dom = await conn.domains.define(domainConfig("chap-pull", [{ target: "vda", volume: { pool: "images", name: "web.qcow2" } }]));
    await dom.start();
    expect((await dom.disks())[0]?.backingChain).toEqual([{ path: template.path, format: "raw" }]);
    const lines = commandLinesUnder(s.dir);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`"user":"${CHAP.username}"`);
    expect(lines[0]).toContain("password-secret");
    expect(lines[0]).not.toContain(CHAP.password);
    // QEMU read the secret file at start; nothing the domain's run left on disk holds the password (the
    // pool's own definition does, as the user gave it).
    expect(filesHolding(join(s.stateDir, "run"), CHAP.password)).toEqual([]);
    expect(filesHolding(join(s.stateDir, "domains"), CHAP.password)).toEqual([]);

    const job = await dom.blockPull("vda");
    await job.wait();
    expect((await job.info()).cur).toBe(16 * MiB);
    expect((await dom.disks())[0]?.backingChain).toEqual([]);
    await dom.destroy();
    expect(backingOf(overlay.path)).toBeUndefined();
    expect(verifyImage(overlay.path, ref)).toMatchObject({ check: 0, compare: 0 });
  });

  /** A qcow2 overlay in "images" over the CHAP template, and `ref.raw`: its content read by qemu-img with the secret. */
  async function overlayWithRef(s: Scratch, san: StoragePool, images: StoragePool, name: string) {
    const template = await san.volumes.get("unit:0:0:1");
    const overlay = await images.volumes.create({ name, format: "qcow2", capacityBytes: 16 * MiB, backing: { path: template.path, format: "raw" } });
    const ref = join(s.dir, `${name}.ref.raw`);
    execFileSync("qemu-img", ["convert", ...imageOpts(s, overlay.path), "-O", "raw", ref]);
    return { template, overlay, ref };
  }

  it("after the managing connection restarts, the running domain's CHAP-backed disk is still pulled online", async () => {
    const { s, conn, san, images } = await connection();
    const { overlay, ref } = await overlayWithRef(s, san, images, "re.qcow2");
    await (await conn.domains.define(domainConfig("chap-re", [{ target: "vda", volume: { pool: "images", name: "re.qcow2" } }]))).start();
    await conn.close(); // QEMU keeps running, and keeps its secret object; no password is needed again
    const again = await s.connect();
    const dom = await again.domains.get("chap-re");
    expect((await dom.info()).state).toBe("running");
    await (await dom.blockPull("vda")).wait();
    await dom.destroy();
    expect(backingOf(overlay.path)).toBeUndefined();
    expect(verifyImage(overlay.path, ref)).toMatchObject({ check: 0, compare: 0 });
  });

  it("a shut-off domain's pull reads the CHAP template through the pool's initiator", async () => {
    const { s, conn, san, images } = await connection();
    const { template, overlay, ref } = await overlayWithRef(s, san, images, "off.qcow2");
    const dom = await conn.domains.define(domainConfig("chap-off", [{ target: "vda", volume: { pool: "images", name: "off.qcow2" } }]));
    expect((await dom.disks())[0]?.backingChain).toEqual([{ path: template.path, format: "raw" }]);
    await (await dom.blockPull("vda")).wait();
    expect(backingOf(overlay.path)).toBeUndefined();
    expect(verifyImage(overlay.path, ref)).toMatchObject({ check: 0, compare: 0 });
  });

  it("block copy onto a CHAP LUN (blockdev-add with a secret object over QMP): ready, pivot, and the domain restarts on the LUN", async () => {
    const { s, conn, images } = await connection();
    const source = await images.volumes.create({ name: "src.raw", format: "raw", capacityBytes: 4 * MiB });
    execFileSync("qemu-io", ["-f", "raw", "-c", "write -q -P 0x3c 0 1M", "-c", "write -q -P 0x4d 3M 512k", source.path]);
    const dom = await conn.domains.define(domainConfig("chap-copy", [{ target: "vda", volume: { pool: "images", name: "src.raw" } }]));
    await dom.start();
    const job = await dom.blockCopy("vda", { destination: { pool: "san", name: "unit:0:0:2" }, reuseExisting: true });
    await until(async () => (await job.info()).state === "ready", `job ${job.id} to be ready`, 20_000);
    expect(commandLinesUnder(s.dir).join("\n")).not.toContain(CHAP.password);
    await job.finalize();
    await job.wait();
    const lun = await (await conn.pools.get("san")).volumes.get("unit:0:0:2");
    expect((await dom.disks())[0]).toMatchObject({ path: lun.path, format: "raw" });
    expect((await dom.config()).disks[0]).toMatchObject({ volume: { pool: "san", name: "unit:0:0:2" } });
    await dom.destroy();
    // The LUN's backing file holds what the source held.
    expect(execFileSync("qemu-img", ["compare", "-q", "-f", "raw", "-F", "raw", tgtd.lunFile(2), source.path], { stdio: "pipe" }).toString()).toBe("");
    await dom.start(); // on the LUN, logging in with the pool's account
    expect((await dom.disks())[0]?.path).toBe(lun.path);
    await dom.destroy();
  });

  it("runs a domain whose disk is the CHAP LUN volume itself", async () => {
    const { s, conn, san } = await connection();
    const lun = await san.volumes.get("unit:0:0:2");
    const dom = await conn.domains.define(domainConfig("chap-lun", [{ target: "vda", volume: { pool: "san", name: "unit:0:0:2" } }]));
    await dom.start();
    expect((await dom.disks())[0]).toMatchObject({ target: "vda", path: lun.key, format: "raw", backingChain: [] });
    expect(commandLinesUnder(s.dir).join("\n")).not.toContain(CHAP.password);
    await dom.destroy();
  });

  it("a password the target no longer accepts fails start with a ConnectError naming the LUN and the account", async () => {
    const { s, conn, san, images } = await connection();
    const template = await san.volumes.get("unit:0:0:1");
    await images.volumes.create({ name: "db.qcow2", format: "qcow2", capacityBytes: 16 * MiB, backing: { path: template.path, format: "raw" } });
    const dom = await conn.domains.define(domainConfig("chap-wrong", [{ target: "vda", volume: { pool: "images", name: "db.qcow2" } }]));
    // The target's account changes its password after the pool logged in with the old one.
    await tgtd.adm(["--op", "delete", "--mode", "account", "--user", CHAP.username]);
    try {
      await tgtd.adm(["--op", "new", "--mode", "account", "--user", CHAP.username, "--password", "another-password-1"]);
      await tgtd.adm(["--op", "bind", "--mode", "account", "--tid", "1", "--user", CHAP.username]);
      const error = await errorOf(dom.start());
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as Error).message).toContain(template.path);
      expect((error as Error).message).toContain(`CHAP account "${CHAP.username}"`);
      expect((await dom.info()).state).toBe("shutoff");
      expect(commandLinesUnder(s.dir)).toEqual([]);
    } finally {
      await tgtd.adm(["--op", "delete", "--mode", "account", "--user", CHAP.username]);
      await tgtd.adm(["--op", "new", "--mode", "account", "--user", CHAP.username, "--password", CHAP.password]);
      await tgtd.adm(["--op", "bind", "--mode", "account", "--tid", "1", "--user", CHAP.username]);
    }
  });

  it("an active commit into a CHAP LUN base reopens the LUN read-write with its secret; the LUN then holds the overlay's data", async () => {
    const { s, conn, san, images } = await connection();
    const base = await san.volumes.get("unit:0:0:3");
    const overlay = await images.volumes.create({ name: "top.qcow2", format: "qcow2", capacityBytes: 4 * MiB, backing: { path: base.path, format: "raw" } });
    execFileSync("qemu-io", ["-c", "write -q -P 0x6e 1M 1M", ...imageOpts(s, overlay.path, 3)]);
    const ref = join(s.dir, "top.ref.raw");
    execFileSync("qemu-img", ["convert", ...imageOpts(s, overlay.path, 3), "-O", "raw", ref]);
    const dom = await conn.domains.define(domainConfig("chap-commit", [{ target: "vda", volume: { pool: "images", name: "top.qcow2" } }]));
    await dom.start();
    const job = await dom.blockCommit("vda");
    await until(async () => (await job.info()).state === "ready", `job ${job.id} to be ready`, 20_000);
    await job.finalize();
    await job.wait();
    expect((await dom.disks())[0]).toMatchObject({ path: base.path, backingChain: [] });
    await dom.destroy();
    expect(execFileSync("qemu-img", ["compare", "-q", "-f", "raw", "-F", "raw", tgtd.lunFile(3), ref], { stdio: "pipe" }).toString()).toBe("");
  });
});
