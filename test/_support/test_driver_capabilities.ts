/** Everything the `test` driver can do, as the conformance kit's capability list (shared by its tests). */
import type { ConformanceCapabilities } from "../conformance/mod.ts";

/** Every capability the kit knows, all of which the `test` driver has. */
export const TEST_DRIVER_CAPABILITIES: ConformanceCapabilities = Object.freeze<ConformanceCapabilities>({
  domains: true,
  storage: true,
  volumeCreate: true,
  volumeFormats: ["raw", "qcow2"],
  volumeResize: true,
  volumeStreams: true,
  volumeClone: true,
  blockPull: true,
  blockCopy: true,
  blockCommit: true,
  liveBlockJobs: true,
  faultInjection: true,
});
