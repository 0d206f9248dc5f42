/**
 * virsh blockcopy, blockcommit and blockjob against virtkitd on qemu:///session with real QEMU, checked
 * as a virsh user would (its messages, `domblklist`, `blockjob --info`) and with qemu-img compare and
 * check: a copy that pivots (`--wait --verbose --pivot`), a copy left mirroring then aborted
 * (`blockjob --abort`), an active commit that pivots onto the base, and read-only clients refused.
 */
import { execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backingOf, killAll, Scratch, skipReal, until, verifyImage } from "../drivers/qemu/_support.ts";
import { skipDaemon, startVirtkitd, type VirtkitdProcess, virsh } from "./_support/virtkitd.ts";

function domainXml(name: string, disk: string): string {
  return `<domain type='kvm'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='none'>hvm</type></os>
  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${disk}'/>
  <target dev='vda' bus='virtio'/></disk></devices></domain>`;
}

/** `qemu-img compare` of two raw images (throws with its output when they differ). */
function compareRaw(image: string, ref: string): void {
  execFileSync("qemu-img", ["compare", "-f", "raw", "-F", "raw", image, ref], { encoding: "utf8" });
}

describe.skipIf(skipDaemon || skipReal)("virsh blockcopy / blockcommit against virtkitd on qemu:///session (real QEMU)", () => {
  const scratch = new Scratch();
  const sets: Scratch[] = [];
  const stateDir = join(scratch.dir, "daemon-state");
  let daemon: VirtkitdProcess;
  let uri: string;
  /** A running domain on a fresh qcow2 overlay over a raw base (each in its own directory). */
  const running = async (name: string) => {
    const set = new Scratch();
    sets.push(set);
    const images = set.images(32);
    const file = join(set.dir, `${name}.xml`);
    writeFileSync(file, domainXml(name, images.overlay));
    expect((await virsh(uri, ["define", file])).code).toBe(0);
    expect((await virsh(uri, ["start", name])).code).toBe(0);
    return { ...images, dir: set.dir };
  };
  beforeAll(async () => {
    daemon = await startVirtkitd(["--allow", "qemu:///session", "--state-dir", stateDir], { dir: scratch.dir });
    uri = daemon.uri("qemu:///session");
  });
  afterAll(async () => {
    await daemon?.stop();
    killAll(stateDir);
    await scratch.cleanup();
    for (const set of sets) await set.cleanup();
  });

  it("blockcopy --wait --verbose --pivot: 'Successfully pivoted', the domain runs on the copy, which reads as the disk", async () => {
    const { ref, dir } = await running("cp1");
    const dest = join(dir, "copy.qcow2");
    const copy = await virsh(uri, ["blockcopy", "cp1", "vda", dest, "--wait", "--verbose", "--pivot"], 120_000);
    // virsh draws its progress bar on stderr, and reports on stdout.
    expect(copy.stderr).not.toMatch(/error/);
    expect(copy.code).toBe(0);
    expect(copy.stderr).toMatch(/Block Copy: \[100 %\]/);
    expect(copy.stdout).toMatch(/Successfully pivoted/);
    expect((await virsh(uri, ["domblklist", "cp1"])).stdout).toMatch(new RegExp(`vda\\s+${dest}`));
    expect((await virsh(uri, ["blockjob", "cp1", "vda", "--info"])).stdout).toMatch(/No current block job/);
    // The definition names the copy too.
    expect((await virsh(uri, ["dumpxml", "--inactive", "cp1"])).stdout).toContain(`<source file="${dest}"/>`);
    expect((await virsh(uri, ["destroy", "cp1"])).code).toBe(0);
    expect(backingOf(dest)).toBeUndefined();
    const verdict = verifyImage(dest, ref);
    expect(verdict.check, verdict.output).toBe(0);
    expect(verdict.compare, verdict.output).toBe(0);
  }, 180_000);

  it("blockcopy --wait stops in the mirroring phase; blockjob --info shows it; --pivot too early is refused; --abort keeps the source", async () => {
    const { overlay, ref, dir } = await running("cp2");
    const dest = join(dir, "mirror.raw");
    const copy = await virsh(uri, ["blockcopy", "cp2", "vda", dest, "--raw", "--bandwidth", "512", "--wait", "--verbose"], 120_000);
    expect(copy.code, copy.stderr).toBe(0);
    expect(copy.stdout).toMatch(/Now in mirroring phase/);
    const info = await virsh(uri, ["blockjob", "cp2", "vda", "--info"]);
    expect(info.stderr).toMatch(/Block Copy: \[100 %\]/);
    expect(info.stdout).toMatch(/Bandwidth limit: 536870912 bytes\/s/);
    // A pull on a disk that mirrors is refused, naming the copy's job.
    const pull = await virsh(uri, ["blockpull", "cp2", "vda"]);
    expect(pull.code).not.toBe(0);
    expect(pull.stderr).toMatch(/job/);
    const abort = await virsh(uri, ["blockjob", "cp2", "vda", "--abort"]);
    expect(abort.code, abort.stderr).toBe(0);
    expect((await virsh(uri, ["blockjob", "cp2", "vda", "--info"])).stdout).toMatch(/No current block job/);
    expect((await virsh(uri, ["domblklist", "cp2"])).stdout).toMatch(new RegExp(`vda\\s+${overlay}`));
    // Pivot without a job: libvirt's "no active block job" error.
    const pivot = await virsh(uri, ["blockjob", "cp2", "vda", "--pivot"]);
    expect(pivot.code).not.toBe(0);
    expect(pivot.stderr).toMatch(/does not have an active block job/);
    expect((await virsh(uri, ["destroy", "cp2"])).code).toBe(0);
    expect(JSON.parse(execFileSync("qemu-img", ["info", "--output=json", dest], { encoding: "utf8" })).format).toBe("raw");
    compareRaw(dest, ref);
  }, 180_000);

  it("blockcommit --active --wait --verbose --pivot: the domain runs on the base, which holds what the disk read", async () => {
    const { base, ref } = await running("cm1");
    const commit = await virsh(uri, ["blockcommit", "cm1", "vda", "--active", "--wait", "--verbose", "--pivot"], 120_000);
    expect(commit.stderr).not.toMatch(/error/);
    expect(commit.code).toBe(0);
    expect(commit.stderr).toMatch(/Block commit: \[100 %\]/);
    expect(commit.stdout).toMatch(/Successfully pivoted/);
    expect((await virsh(uri, ["domblklist", "cm1"])).stdout).toMatch(new RegExp(`vda\\s+${base}`));
    expect((await virsh(uri, ["destroy", "cm1"])).code).toBe(0);
    compareRaw(base, ref);
  }, 180_000);

  it("blockcommit --top --base of an intermediate image: a Block Commit job (not active, no pivot), the top re-linked onto the base", async () => {
    const set = new Scratch();
    sets.push(set);
    const { base, overlay: mid, ref } = set.images(32);
    const top = join(set.dir, "top.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", mid, "-F", "qcow2", top]);
    const file = join(set.dir, "cm2.xml");
    writeFileSync(file, domainXml("cm2", top));
    expect((await virsh(uri, ["define", file])).code).toBe(0);
    expect((await virsh(uri, ["start", "cm2"])).code).toBe(0);
    // Capped, so it is still running when blockjob --info looks; then uncapped to finish.
    const started = await virsh(uri, ["blockcommit", "cm2", "vda", "--top", mid, "--base", base, "--bandwidth", "1"]);
    expect(started.code, started.stderr).toBe(0);
    const info = await virsh(uri, ["blockjob", "cm2", "vda", "--info"]);
    expect(info.stderr).toMatch(/^\s*Block Commit: \[/m);
    expect(info.stdout).toMatch(/Bandwidth limit: 1048576 bytes\/s/);
    // libvirt's pivot is for copies and active commits only.
    const pivot = await virsh(uri, ["blockjob", "cm2", "vda", "--pivot"]);
    expect(pivot.stderr).toMatch(/requires an active copy job/);
    expect((await virsh(uri, ["blockjob", "cm2", "vda", "--bandwidth", "0"])).code).toBe(0);
    await until(async () => /No current block job/.test((await virsh(uri, ["blockjob", "cm2", "vda", "--info"])).stdout), "the commit to finish", 60_000);
    const dumpxml = (await virsh(uri, ["dumpxml", "cm2"])).stdout;
    expect(dumpxml).toContain(`<source file="${top}"/>`);
    expect(dumpxml).toContain(`<source file="${base}"/>`);
    expect(dumpxml).not.toContain(mid);
    expect((await virsh(uri, ["destroy", "cm2"])).code).toBe(0);
    expect(backingOf(top)).toBe(base);
    // The top reads over the base what the disk read over mid and base.
    const verdict = verifyImage(top, ref);
    expect(verdict.compare, verdict.output).toBe(0);
  }, 180_000);

  it("refuses blockcommit without --active on the active image, and blockcopy and blockcommit to a read-only client", async () => {
    const { dir } = await running("ro1");
    const plain = await virsh(uri, ["blockcommit", "ro1", "vda"]);
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toMatch(/active layer requires active flag/);
    const dest = join(dir, "never.qcow2");
    for (const args of [["blockcopy", "ro1", "vda", dest], ["blockcommit", "ro1", "vda", "--active"], ["blockcopy", "ro1", "vda", "--xml", join(dir, "ro1.xml")]]) {
      const denied = await virsh(uri, ["-r", ...args]);
      expect(denied.code, args.join(" ")).not.toBe(0);
      expect(denied.stderr, args.join(" ")).toMatch(/operation forbidden|read only access/i);
    }
    expect(existsSync(dest)).toBe(false);
    expect((await virsh(uri, ["blockjob", "ro1", "vda", "--info"])).stdout).toMatch(/No current block job/);
    expect((await virsh(uri, ["destroy", "ro1"])).code).toBe(0);
  }, 120_000);
});
