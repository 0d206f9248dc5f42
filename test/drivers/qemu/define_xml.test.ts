/**
 * A user brings an existing libvirt domain definition to virtkit's qemu driver: libvirtd (real, as
 * `nobody`) completes a definition, `virsh dumpxml` gives it back, `conn.domains.defineXml()` takes it
 * (strict: nothing dropped), and the domain runs on real QEMU with its disk attached.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { QmpClient } from "../../../drivers/qemu/qmp/client.ts";
import { connectUnixSocket } from "../../../drivers/qemu/qmp/transport.ts";
import { type RunningLibvirtd, skipLibvirtd, startLibvirtd } from "../../_support/libvirtd.ts";
import { MiB, Scratch, skipReal } from "./_support.ts";

const scratches: Scratch[] = [];
afterEach(async () => {
  for (const s of scratches.splice(0)) await s.cleanup();
});

describe.skipIf(skipReal || skipLibvirtd)("qemu driver: defineXml of a libvirt dumpxml", () => {
  let daemon: RunningLibvirtd;
  beforeAll(async () => {
    daemon = await startLibvirtd();
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it("defines, starts with the disk attached as virtio-blk, and xml() round-trips", async () => {
    const s = new Scratch();
    scratches.push(s);
    const { overlay } = s.images(16);
    const definition = join(daemon.dir, "app1.xml");
    writeFileSync(definition, `<domain type='qemu'><name>app1</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
      <os><type arch='x86_64' machine='q35'>hvm</type></os>
      <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${overlay}'/><target dev='vda' bus='virtio'/></disk>
      <controller type='usb' model='none'/><memballoon model='none'/><video><model type='none'/></video></devices></domain>`);
    daemon.virsh(["define", definition]);
    const dumped = daemon.virsh(["dumpxml", "app1"]);
    const uuid = daemon.virsh(["domuuid", "app1"]).trim();

    const conn = await s.connect();
    const dom = await conn.domains.defineXml(dumped, { strict: true });
    expect(dom.uuid).toBe(uuid);
    expect(await dom.config()).toEqual({
      name: "app1", uuid, vcpus: 1, memoryBytes: 64 * MiB, machine: "pc-q35-7.2", disks: [{ target: "vda", path: overlay, format: "qcow2" }],
    });
    await dom.start();
    expect((await dom.disks())[0]?.backingChain.length).toBe(1);
    // And libvirt takes virtkit's XML of it back (as another domain name).
    const back = join(daemon.dir, "app2.xml");
    writeFileSync(back, (await dom.xml({ hypervisor: "qemu" })).replace("<name>app1</name>", "<name>app2</name>").replace(/<uuid>.*<\/uuid>/, ""));
    daemon.virsh(["define", back]);
    await conn.close();
    const { socket } = JSON.parse(readFileSync(join(s.stateDir, "run", "app1.json"), "utf8")) as { socket: string };
    const qmp = await QmpClient.connect(await connectUnixSocket(socket));
    try {
      const blocks = await qmp.execute<Array<{ qdev?: string }>>("query-block");
      expect(blocks.map((b) => b.qdev?.split("/")[3])).toContain("vda");
    } finally {
      await qmp.close();
    }
  });
});
