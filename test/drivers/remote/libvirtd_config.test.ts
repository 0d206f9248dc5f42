/**
 * The test libvirtd's `extraConfig`: its lines go into the daemon's `libvirtd.conf` and the daemon reads
 * them (one with a value libvirtd rejects makes it exit before answering, and the helper says so).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { skipLibvirtd, startLibvirtd } from "../../_support/libvirtd.ts";

describe.skipIf(skipLibvirtd)("test libvirtd: extraConfig", () => {
  it("adds its lines to libvirtd.conf, and the daemon answers with them", async () => {
    const daemon = await startLibvirtd({ driver: "test", extraConfig: ["max_client_requests = 16"] });
    try {
      expect(readFileSync(join(daemon.dir, "libvirtd.conf"), "utf8").split("\n")).toContain("max_client_requests = 16");
      expect(daemon.virsh(["domstate", "test"]).trim()).toBe("running");
    } finally {
      await daemon.stop();
    }
  }, 30_000);

  it("a value libvirtd rejects makes it exit, which startLibvirtd reports", async () => {
    await expect(startLibvirtd({ driver: "test", extraConfig: ['max_client_requests = "many"'] })).rejects.toThrow(/libvirtd exited before answering/);
  }, 30_000);
});
