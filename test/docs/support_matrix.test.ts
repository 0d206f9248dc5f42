/** docs/support-matrix.md is generated: it must equal what scripts/support_matrix.ts makes now. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createDefaultRegistry, createRegistry, defineStorageBackend } from "../../mod.ts";
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
});
