/**
 * Debian's virsh 9.0 against virtkitd on test:///default: the handshake, listing, info, state, the
 * lifecycle, a shut-off domain's XML with its disk chain, block pull with --wait --verbose, blockjob --info/--bandwidth/--abort, and events, checked
 * as a virsh user reads them.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { skipDaemon, type VirtkitdProcess, useVirtkitd, virsh } from "./_support/virtkitd.ts";

describe.skipIf(skipDaemon)("virsh against virtkitd (test:///default)", () => {
  let daemon: VirtkitdProcess;
  let uri: string;
  useVirtkitd((started) => {
    daemon = started;
    uri = started.uri("test:///default");
  });

  it("lists the seeded domain and shows its info and state", async () => {
    const list = await virsh(uri, ["list", "--all"]);
    expect(list.stderr).toBe("");
    expect(list.stdout).toMatch(/^\s*Id\s+Name\s+State\s*\n-+\n\s*1\s+test\s+running\s*\n/);
    const info = await virsh(uri, ["dominfo", "test"]);
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(/^Id:\s+1$/m);
    expect(info.stdout).toMatch(/^Name:\s+test$/m);
    expect(info.stdout).toMatch(/^UUID:\s+[0-9a-f-]{36}$/m);
    expect(info.stdout).toMatch(/^State:\s+running$/m);
    expect(info.stdout).toMatch(/^Persistent:\s+yes$/m);
    expect((await virsh(uri, ["domstate", "test"])).stdout.trim()).toBe("running");
    expect((await virsh(uri, ["domid", "test"])).stdout.trim()).toBe("1");
    expect((await virsh(uri, ["domname", "1"])).stdout.trim()).toBe("test");
    expect((await virsh(uri, ["domname", "7"])).stderr).toMatch(/failed to get domain '7'/);
    const missing = await virsh(uri, ["dominfo", "nosuch"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/failed to get domain 'nosuch'/);
  });

  it("dumps the XML, lists the disks from it, and defines and undefines a domain from XML", async () => {
    const xml = await virsh(uri, ["dumpxml", "test"]);
    expect(xml.stdout).toMatch(/<domain type=["']test["']>/);
    expect(xml.stdout).toMatch(/<name>test<\/name>/);
    expect(xml.stdout).toMatch(/<target dev=["']vda["']/);
    const disks = await virsh(uri, ["domblklist", "test"]);
    expect(disks.stdout).toMatch(/^\s*Target\s+Source\s*\n-+\n\s*vda\s+test\.qcow2\s*$/m);
    const file = join(daemon.dir, "copy.xml");
    writeFileSync(file, xml.stdout.replace("<name>test</name>", "<name>copy</name>").replace(/<uuid>.*<\/uuid>/, ""));
    expect((await virsh(uri, ["define", file])).stdout).toMatch(/Domain 'copy' defined from/);
    expect((await virsh(uri, ["list", "--all"])).stdout).toMatch(/-\s+copy\s+shut off/);
    expect((await virsh(uri, ["dumpxml", "copy"])).stdout).toMatch(/<source pool=["']default-pool["'] volume=["']test\.qcow2["']/);
    expect((await virsh(uri, ["undefine", "copy"])).stdout).toMatch(/Domain 'copy' has been undefined/);
    expect((await virsh(uri, ["list", "--all"])).stdout).not.toMatch(/copy/);
    writeFileSync(file, "<domain><name>broken");
    const bad = await virsh(uri, ["define", file]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/XML/);
  });

  it("suspends, resumes, destroys and starts, each seen by the next command", async () => {
    expect((await virsh(uri, ["suspend", "test"])).stdout).toMatch(/Domain 'test' suspended/);
    expect((await virsh(uri, ["domstate", "test"])).stdout.trim()).toBe("paused");
    expect((await virsh(uri, ["resume", "test"])).stdout).toMatch(/Domain 'test' resumed/);
    expect((await virsh(uri, ["destroy", "test"])).stdout).toMatch(/Domain 'test' destroyed/);
    expect((await virsh(uri, ["list", "--all"])).stdout).toMatch(/-\s+test\s+shut off/);
    expect((await virsh(uri, ["list"])).stdout).not.toMatch(/test/);
    const again = await virsh(uri, ["destroy", "test"]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/Requested operation is not valid|not running/);
    expect((await virsh(uri, ["start", "test"])).stdout).toMatch(/Domain 'test' started/);
    // A restart gets a new id, as with libvirt.
    expect((await virsh(uri, ["domid", "test"])).stdout.trim()).toBe("2");
    expect((await virsh(uri, ["shutdown", "test"])).stdout).toMatch(/Domain 'test' is being shutdown/);
    expect((await virsh(uri, ["domstate", "test"])).stdout.trim()).toBe("shut off");
    expect((await virsh(uri, ["start", "test"])).code).toBe(0);
  });

  it("dumps a shut-off domain's disk chain (libvirt would not), not in --inactive, and defines a domain from that XML", async () => {
    expect((await virsh(uri, ["destroy", "test"])).code).toBe(0);
    try {
      const xml = await virsh(uri, ["dumpxml", "test"]);
      expect(xml.stdout).toMatch(/<backingStore[^>]*>\s*<format type=["']raw["']\/>\s*<source file=["']\/default-pool\/template\.img["']/);
      expect((await virsh(uri, ["dumpxml", "--inactive", "test"])).stdout).not.toMatch(/backingStore/);
      const file = join(daemon.dir, "chain.xml");
      writeFileSync(file, xml.stdout.replace("<name>test</name>", "<name>chained</name>").replace(/<uuid>.*<\/uuid>/, ""));
      expect((await virsh(uri, ["define", file])).stdout).toMatch(/Domain 'chained' defined from/);
      // The chain is read from the images, not kept from the XML: the same one shows again.
      expect((await virsh(uri, ["dumpxml", "chained"])).stdout).toMatch(/<source file=["']\/default-pool\/template\.img["']/);
      expect((await virsh(uri, ["undefine", "chained"])).code).toBe(0);
    } finally {
      expect((await virsh(uri, ["start", "test"])).code).toBe(0);
    }
  });

  it("pulls a disk with --wait --verbose to 'Pull complete', and manages a capped job with blockjob", async () => {
    const capped = await virsh(uri, ["blockpull", "test", "vda", "--bandwidth", "1"]);
    expect(capped.code).toBe(0);
    const info = await virsh(uri, ["blockjob", "test", "vda", "--info"]);
    expect(info.stdout).toMatch(/Bandwidth limit: 1048576 bytes\/s \(1\.000 MiB\/s\)/);
    expect(info.stderr).toMatch(/Block Pull: \[\s*\d+ %\]/);
    expect((await virsh(uri, ["blockjob", "test", "vda", "--bandwidth", "3"])).code).toBe(0);
    expect((await virsh(uri, ["blockjob", "test", "vda", "--info"])).stdout).toMatch(/Bandwidth limit: 3145728 bytes\/s/);
    const busy = await virsh(uri, ["blockpull", "test", "vda"]);
    expect(busy.code).not.toBe(0);
    expect(busy.stderr).toMatch(/job-\d+/);
    expect((await virsh(uri, ["blockjob", "test", "vda", "--abort"])).code).toBe(0);
    expect((await virsh(uri, ["blockjob", "test", "vda", "--info"])).stdout).toMatch(/No current block job for vda/);
    // --base (BLOCK_REBASE): keeping the template as the base leaves nothing to pull above it.
    const kept = await virsh(uri, ["blockpull", "test", "vda", "--base", "/default-pool/template.img", "--wait", "--verbose"], 120_000);
    expect(kept.stdout + kept.stderr).toMatch(/Pull complete/);
    const badBase = await virsh(uri, ["blockpull", "test", "vda", "--base", "/nope", "--wait"]);
    expect(badBase.stderr).toMatch(/not in the backing chain/);
    const pull = await virsh(uri, ["blockpull", "test", "vda", "--wait", "--verbose"], 120_000);
    expect(pull.code).toBe(0);
    expect(pull.stdout + pull.stderr).toMatch(/Pull complete/);
    const bad = await virsh(uri, ["blockpull", "test", "vdz"]);
    expect(bad.stderr).toMatch(/invalid path vdz/);
  });
});
