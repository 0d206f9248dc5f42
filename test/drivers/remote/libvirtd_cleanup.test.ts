/**
 * The test libvirtd's `stop()` leaves nothing running: a guest QEMU that libvirtd started and a test
 * never destroyed (what a failing test leaves) is killed with the daemon, found by the daemon's
 * directory on its command line.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { skipLibvirtd, startLibvirtd } from "../../_support/libvirtd.ts";
import { skipReal } from "../qemu/_support.ts";

const qemuNaming = (text: string) =>
  readdirSync("/proc").filter((entry) => {
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      return cmdline.startsWith("/usr/bin/qemu-system") && cmdline.includes(text);
    } catch {
      return false;
    }
  });

describe.skipIf(skipLibvirtd || skipReal)("test libvirtd: stop()", () => {
  it("kills a guest QEMU the daemon started and nobody destroyed", async () => {
    const daemon = await startLibvirtd({ driver: "qemu" });
    try {
      const xml = join(daemon.mkdir("xml"), "leak.xml");
      writeFileSync(xml, "<domain type='qemu'><name>leak</name><memory unit='MiB'>64</memory><os><type arch='x86_64' machine='q35'>hvm</type></os></domain>");
      daemon.virsh(["create", xml]);
      expect(qemuNaming(daemon.dir)).toHaveLength(1);
    } finally {
      await daemon.stop();
    }
    expect(qemuNaming(daemon.dir)).toEqual([]);
  }, 60_000);
});
