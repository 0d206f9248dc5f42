/**
 * A qemu domain defined as a new user would (no machine) boots on q35 with its disks attached as guest
 * devices and its vCPUs given: real QEMU, asked over its own QMP socket what the guest sees.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { connectUnixSocket } from "../../../drivers/qemu/qmp/transport.ts";
import { QmpClient } from "../../../drivers/qemu/qmp/client.ts";
import { MiB, Scratch, skipReal } from "./_support.ts";

const scratches: Scratch[] = [];
afterEach(async () => {
  for (const s of scratches.splice(0)) await s.cleanup();
});

interface PciDevice {
  readonly qdev_id: string;
  readonly id: { readonly vendor: number; readonly device: number };
}

describe("qemu driver: the default machine", () => {
  it.skipIf(skipReal)("without machine: q35, -smp, and each vdX disk a virtio-blk-pci device the guest sees", async () => {
    const s = new Scratch();
    scratches.push(s);
    const { overlay, base } = s.images(16);
    const conn = await s.connect();
    const dom = await conn.domains.define({
      name: "guest",
      vcpus: 2,
      memoryBytes: 64 * MiB,
      disks: [{ target: "vda", path: overlay, format: "qcow2" }, { target: "vdb", path: base, format: "raw", readonly: true }],
    });
    expect((await dom.config()).machine).toBe("q35");
    await dom.start();
    // Detach the driver (QEMU keeps running, as after a restart) and ask QEMU directly.
    await conn.close();
    const { socket } = JSON.parse(readFileSync(join(s.stateDir, "run", "guest.json"), "utf8")) as { socket: string };
    const qmp = await QmpClient.connect(await connectUnixSocket(socket));
    try {
      const pci = await qmp.execute<Array<{ devices: PciDevice[]; bus: number }>>("query-pci");
      const devices = pci.flatMap((bus) => bus.devices);
      // 0x1af4 is virtio's vendor; 0x1001 the transitional virtio-blk device id.
      const blk = devices.filter((d) => d.id.vendor === 0x1af4 && d.id.device === 0x1001).map((d) => d.qdev_id).sort();
      expect(blk).toEqual(["vda", "vdb"]);
      const blocks = await qmp.execute<Array<{ qdev?: string; inserted?: { "node-name": string; ro: boolean } }>>("query-block");
      const attached = Object.fromEntries(blocks.filter((b) => b.qdev !== undefined).map((b) => [b.qdev!.split("/")[3], b.inserted?.ro]));
      expect(attached).toEqual({ vda: false, vdb: true });
      const cpus = await qmp.execute<unknown[]>("query-cpus-fast");
      expect(cpus).toHaveLength(2);
    } finally {
      await qmp.close();
    }
  });
});
