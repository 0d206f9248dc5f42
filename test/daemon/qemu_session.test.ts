/**
 * virsh against virtkitd on qemu:///session with real QEMU: define from XML, start, list, a block pull
 * with --wait --verbose checked by qemu-img, and a daemon restart in the middle of a capped pull: the
 * QEMU process keeps running, the restarted daemon finds the job again, and it completes.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backingOf, killAll, Scratch, skipReal, verifyImage } from "../drivers/qemu/_support.ts";
import { skipDaemon, startVirtkitd, type VirtkitdProcess, virsh } from "./_support/virtkitd.ts";

function domainXml(name: string, disk: string): string {
  return `<domain type='kvm'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='none'>hvm</type></os>
  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${disk}'/>
  <target dev='vda' bus='virtio'/></disk></devices></domain>`;
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(skipDaemon || skipReal)("virsh against virtkitd on qemu:///session (real QEMU)", () => {
  const scratch = new Scratch();
  const images2 = new Scratch(); // images of the second domain, beside the first one's
  const stateDir = join(scratch.dir, "daemon-state");
  let daemon: VirtkitdProcess;
  let uri: string;
  const start = async () => {
    daemon = await startVirtkitd(["--allow", "qemu:///session", "--state-dir", stateDir], { dir: scratch.dir });
    uri = daemon.uri("qemu:///session");
  };
  beforeAll(start);
  afterAll(async () => {
    await daemon?.stop();
    killAll(stateDir);
    await scratch.cleanup();
    await images2.cleanup();
  });

  it("defines, starts, pulls with --wait --verbose to 'Pull complete', and destroys a QEMU domain", async () => {
    const { overlay, ref } = scratch.images(64);
    const file = join(scratch.dir, "vm1.xml");
    writeFileSync(file, domainXml("vm1", overlay));
    expect((await virsh(uri, ["define", file])).stdout).toMatch(/Domain 'vm1' defined/);
    const started = await virsh(uri, ["start", "vm1"]);
    expect(started.stderr).toBe("");
    expect((await virsh(uri, ["list"])).stdout).toMatch(/\d+\s+vm1\s+running/);
    expect((await virsh(uri, ["domblklist", "vm1"])).stdout).toContain(overlay);
    const pull = await virsh(uri, ["blockpull", "vm1", "vda", "--wait", "--verbose"], 120_000);
    expect(pull.code).toBe(0);
    expect(pull.stdout + pull.stderr).toMatch(/Pull complete/);
    expect((await virsh(uri, ["blockjob", "vm1", "vda", "--info"])).stdout).toMatch(/No current block job/);
    expect((await virsh(uri, ["destroy", "vm1"])).stdout).toMatch(/Domain 'vm1' destroyed/);
    // QEMU holds the image's lock while it runs: the referee looks once it is gone.
    expect(backingOf(overlay)).toBeUndefined();
    const verdict = verifyImage(overlay, ref);
    expect(verdict.check, verdict.output).toBe(0);
    expect(verdict.compare, verdict.output).toBe(0);
  }, 180_000);

  it("keeps a capped pull running across a daemon restart, and the new daemon sees it complete", async () => {
    const { overlay, ref } = images2.images(64);
    const file = join(scratch.dir, "vm2.xml");
    writeFileSync(file, domainXml("vm2", overlay));
    expect((await virsh(uri, ["define", file])).code).toBe(0);
    expect((await virsh(uri, ["start", "vm2"])).code).toBe(0);
    expect((await virsh(uri, ["blockpull", "vm2", "vda", "--bandwidth", "1"])).code).toBe(0);
    expect((await virsh(uri, ["blockjob", "vm2", "vda", "--info"])).stdout).toMatch(/Bandwidth limit: 1048576 bytes\/s/);
    const stopped = await daemon.stop();
    // A clean stop logs "stopped" last and exits 0. (Deno's child_process reports a child it sent
    // SIGTERM as killed by it even when the child exited 0 from its handler, so accept that there.)
    // (A client still closing may log its disconnect between the two lines.)
    expect(daemon.stderr()).toMatch(/SIGTERM: stopping\n(virtkitd: client \d+ disconnected \(.*\)\n)*virtkitd: stopped\n$/);
    const isDeno = "Deno" in globalThis;
    expect(stopped.code === 0 || (isDeno && stopped.signal === "SIGTERM"), JSON.stringify(stopped)).toBe(true);
    await start();
    // The job is found again (QEMU kept running it), with its cap.
    const info = await virsh(uri, ["blockjob", "vm2", "vda", "--info"]);
    expect(info.stdout).toMatch(/Bandwidth limit: 1048576 bytes\/s/);
    expect((await virsh(uri, ["list"])).stdout).toMatch(/vm2\s+running/);
    expect((await virsh(uri, ["blockjob", "vm2", "vda", "--bandwidth", "0"])).code).toBe(0);
    await until(async () => /No current block job/.test((await virsh(uri, ["blockjob", "vm2", "vda", "--info"])).stdout), "the pull to complete");
    expect((await virsh(uri, ["destroy", "vm2"])).code).toBe(0);
    expect(backingOf(overlay)).toBeUndefined();
    const verdict = verifyImage(overlay, ref);
    expect(verdict.compare, verdict.output).toBe(0);
  }, 180_000);
});
