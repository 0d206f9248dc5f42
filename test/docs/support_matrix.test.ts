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
    expect(text).toContain("| `liar` | `liar:` | no | no | yes | no | no | no | no | no | no |");
  });
});
