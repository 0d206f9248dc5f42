/** docs/support-matrix.md is generated: it must equal what scripts/support_matrix.ts makes now. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ConnectError, createDefaultRegistry, createRegistry, defineHypervisorDriver, defineStorageBackend } from "../../mod.ts";
import { renderSupportMatrix, SUPPORT_MATRIX_PATH } from "../../scripts/support_matrix.ts";

describe("support matrix", () => {
  it("docs/support-matrix.md is up to date (regenerate: npx tsx scripts/support_matrix.ts)", async () => {
    expect(readFileSync(SUPPORT_MATRIX_PATH, "utf8")).toBe(await renderSupportMatrix(createDefaultRegistry()));
  });

  it("lists every registered backend from its declaration, and marks one that declares nothing", async () => {
    const registry = createRegistry();
    const open = () => Promise.reject(new Error("unused"));
    registry.register(defineStorageBackend({ name: "acme", capabilities: ["build", "openVolume"], open }));
    registry.register(defineStorageBackend({ name: "bare", open }));
    const text = await renderSupportMatrix(registry);
    expect(text).toContain("| `acme` | yes | no | no | no | no | no | no | yes |");
    expect(text).toContain("| `bare` | ? | ? | ? | ? | ? | ? | ? | ? |");
  });

  it("a hypervisor driver's declaration is checked when a connection opens", async () => {
    const registry = createRegistry();
    const closed: string[] = [];
    const base = {
      listDomains: async () => [],
      domainInfo: async () => { throw new Error("none"); },
      domainConfig: async () => { throw new Error("none"); },
      close: async () => void closed.push("closed"),
    };
    registry.register(defineHypervisorDriver({ name: "liar", schemes: ["liar"], capabilities: ["startDomain"], open: async () => base }));
    const error = await registry.connect("liar:///x").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect(String(error)).toContain('Hypervisor driver "liar" declares startDomain but its connection lacks it');
    expect(closed).toEqual(["closed"]);
    expect(() => defineHypervisorDriver({ name: "x", schemes: ["x"], capabilities: ["fly" as never], open: async () => base })).toThrow(TypeError);
    const text = await renderSupportMatrix(registry);
    expect(text).toContain("| `liar` | `liar:` | no | no | yes | no | no | no | no | no | no | no | no | no | no | no |");
  });

  it("a driver with peers has a row per peer, with offline copy and commit as each peer does them", async () => {
    const registry = createRegistry();
    const base = {
      listDomains: async () => [],
      domainInfo: async () => { throw new Error("none"); },
      domainConfig: async () => { throw new Error("none"); },
      liveBlockCopy: async () => { throw new Error("none"); },
      close: async () => {},
    };
    const peers = [{ name: "plain", runsOfflineBlockJobs: false }, { name: "smart", runsOfflineBlockJobs: true }];
    registry.register(defineHypervisorDriver({ name: "relay", schemes: ["relay"], capabilities: ["liveBlockCopy"], peers, open: async () => base }));
    const text = await renderSupportMatrix(registry);
    // Copy: core's engine needs setDiskSource (absent); the smart peer runs it through liveBlockCopy. Commit: neither.
    expect(text).toContain("| `relay` on plain | `relay:` | no | no | no | no | no | no | no | no | no | yes | no | no | no | no |");
    expect(text).toContain("| `relay` on smart | `relay:` | no | no | no | no | no | no | no | no | no | yes | no | no | yes | no |");
    expect(text).not.toContain("| `relay` | ");
  });

  it("a connection's peerRunsOfflineBlockJobs must be one its driver's peers declare; malformed peers are refused", async () => {
    const registry = createRegistry();
    const closed: string[] = [];
    const base = {
      peerRunsOfflineBlockJobs: true,
      listDomains: async () => [],
      domainInfo: async () => { throw new Error("none"); },
      domainConfig: async () => { throw new Error("none"); },
      close: async () => void closed.push("closed"),
    };
    registry.register(defineHypervisorDriver({ name: "plain", schemes: ["plain"], peers: [{ name: "libvirtd", runsOfflineBlockJobs: false }], open: async () => base }));
    const error = await registry.connect("plain:///x").catch((e: unknown) => e);
    expect(String(error)).toContain('Hypervisor driver "plain" declares peers libvirtd, none of which has runsOfflineBlockJobs true as its connection does');
    expect(closed).toEqual(["closed"]);
    const open = async () => base;
    for (const peers of [[], [{ name: "a" }], [{ name: "a", runsOfflineBlockJobs: true }, { name: "a", runsOfflineBlockJobs: false }], "libvirtd"]) {
      expect(() => defineHypervisorDriver({ name: "x", schemes: ["x"], peers: peers as never, open })).toThrow("peers must be a non-empty list of distinct");
    }
  });
});
