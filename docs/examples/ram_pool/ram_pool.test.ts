// The plugin's conformance run, as its author keeps it next to the plugin.
import { createDefaultRegistry, createVirtualClock, MiB } from "virtkit";
import { describeConformance } from "virtkit/testing/vitest";
import { ramPlugin } from "./mod.ts";

// A registry of your own with the built-in drivers (the `test` driver serves the connection), plus your
// plugin. `use()` is async: await it before connecting. (`createRegistry()` would be empty: no drivers.)
const registry = createDefaultRegistry();
await registry.use(ramPlugin);
const clock = createVirtualClock();

describeConformance("ram pool plugin", {
  connect: () => registry.connect("test:///empty", { clock }),
  poolConfig: (name) => ({ name, type: "ram", capacityBytes: MiB(256) }),
  clock,
  capabilities: {
    storage: true,
    volumeCreate: true,
    volumeFormats: ["raw", "qcow2"],
    volumeResize: true,
    volumeStreams: true,
    volumeClone: true,
  },
});
