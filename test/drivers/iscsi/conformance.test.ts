/**
 * The `iscsi` backend against the conformance kit's storage cases, on a private tgtd whose target has
 * no LUNs but its controller (LUN 0, which is no volume): every scratch pool of the kit is an empty
 * pool on it. LUN volumes cannot be created, so the volume cases are skipped (the kit says so); the
 * data path is covered by pool.test.ts.
 */
import { afterAll, describe, it } from "vitest";
import { connect } from "../../../mod.ts";
import { describeConformance } from "../../conformance/vitest.ts";
import { skipIscsi, Tgtd } from "../../_support/tgtd.ts";

if (!skipIscsi) {
  const tgtd = await Tgtd.start({ luns: [] });
  afterAll(() => tgtd.stop());
  describeConformance("iscsi backend", {
    connect: () => connect("test:///empty"),
    poolConfig: (name) => ({ name, type: "iscsi", host: "127.0.0.1", port: tgtd.port, target: tgtd.target }),
    capabilities: { storage: true },
  });
} else {
  describe.skip("iscsi backend (needs tgt and libiscsi-bin; CI=true runs it)", () => {
    it("is skipped here", () => {});
  });
}
