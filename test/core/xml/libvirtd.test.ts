/**
 * The XML virtkit writes is what a stock libvirtd 9.0 with QEMU 7.2 accepts (`virsh define`,
 * `pool-define`, `vol-create`), and libvirt's dump of what it made parses back to the same config.
 * A real unprivileged libvirtd (test/_support/libvirtd.ts); under CI=true a missing one fails the suite.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { domainFromXml, domainToXml, poolFromXml, poolToXml, volumeFromXml, volumeToXml } from "../../../core/xml/mod.ts";
import { type RunningLibvirtd, skipLibvirtd, startLibvirtd } from "../../_support/libvirtd.ts";

const MiB = 2 ** 20;

describe.skipIf(skipLibvirtd)("XML against a real libvirtd", () => {
  let daemon: RunningLibvirtd;
  let images: string;
  const file = (name: string, xml: string) => {
    const path = join(daemon.dir, name);
    writeFileSync(path, xml);
    return path;
  };

  beforeAll(async () => {
    daemon = await startLibvirtd();
    images = daemon.mkdir("images");
    execFileSync("qemu-img", ["create", "-q", "-f", "raw", join(images, "base.raw"), "16M"]);
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", join(images, "base.raw"), "-F", "raw", join(images, "top.qcow2")]);
    execFileSync("chown", ["-R", "nobody:nogroup", images]);
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it("virsh define takes domainToXml's output, and dumpxml parses back to the config (strict)", () => {
    const config = {
      name: "web1",
      uuid: "1c3d5a2e-7f00-4b6e-9a11-2f3c4d5e6f70",
      vcpus: 2,
      memoryBytes: 96 * MiB,
      machine: "q35",
      disks: [
        { target: "vda", path: join(images, "top.qcow2"), format: "qcow2" },
        { target: "vdb", path: join(images, "base.raw"), format: "raw", readonly: true },
      ],
    };
    // /dev/kvm is not open to the unprivileged daemon here, so the domain type is TCG's "qemu".
    daemon.virsh(["define", file("web1.xml", domainToXml(config, { hypervisor: "qemu" }))]);
    const back = domainFromXml(daemon.virsh(["dumpxml", "--inactive", "web1"]), { strict: true }).config;
    expect(back).toEqual({ ...config, machine: "pc-q35-7.2" });
    // libvirt also starts it: the XML is a guest QEMU runs, not only one libvirt stores.
    daemon.virsh(["start", "web1"]);
    expect(daemon.virsh(["domstate", "web1"]).trim()).toBe("running");
    daemon.virsh(["destroy", "web1"]);
  });

  it("pool-define takes poolToXml's dir, logical and iscsi pools, and pool-dumpxml parses back", () => {
    const pools = [
      { name: "images", type: "dir", path: daemon.mkdir("pool") },
      { name: "vg1", type: "logical", volumeGroup: "vg1", devices: ["/dev/loop6", "/dev/loop5"] },
      { name: "san", type: "iscsi", host: "127.0.0.1", port: 3261, target: "iqn.2026-01.org.example:disks" },
    ] as const;
    for (const pool of pools) {
      daemon.virsh(["pool-define", file(`${pool.name}.xml`, poolToXml(pool))]);
      const { config } = poolFromXml(daemon.virsh(["pool-dumpxml", pool.name]), { strict: true });
      expect(config).toEqual({ ...pool, uuid: (config as { uuid?: string }).uuid });
    }
    daemon.virsh(["pool-start", "images"]);
  });

  it("pool-define takes a logical pool with virtkit's thin pool element; libvirt skips the foreign element and keeps the rest", () => {
    const pool = { name: "vgthin", type: "logical" as const, volumeGroup: "vgthin", devices: ["/dev/loop4"], thinPool: "tp0" };
    const xml = poolToXml(pool);
    expect(xml).toContain("virtkit:thin_pool");
    const path = file("vgthin.xml", xml);
    // Only schema validation, which virsh does when asked, refuses it: libvirt's RNG has no extension
    // point in a logical pool (it lists its own fs: and rbd: namespaces only). docs/storage.md says so.
    expect(() => daemon.virsh(["pool-define", "--validate", path])).toThrow("Element pool has extra content: thin_pool");
    daemon.virsh(["pool-define", path]);
    const { thinPool: _kept, ...rest } = pool;
    // libvirt has nowhere to keep an element it does not model: its dump is the pool without it.
    const dumped = daemon.virsh(["pool-dumpxml", "vgthin"]);
    expect(dumped).not.toContain("thin_pool");
    expect(poolFromXml(dumped, { strict: true }).config).toEqual({ ...rest, uuid: (poolFromXml(dumped).config as { uuid?: string }).uuid });
    daemon.virsh(["pool-undefine", "vgthin"]);
  });

  it("pool-define takes an iscsi pool's initiator and CHAP auth (a named secret, no password); pool-dumpxml parses back strict", () => {
    const pool = {
      name: "sanauth", type: "iscsi" as const, host: "127.0.0.1", port: 3261, target: "iqn.2026-01.org.example:disks",
      initiator: "iqn.2026-01.org.example:host1", auth: { type: "chap" as const, username: "alice", password: "s3cret-pw" },
    };
    const xml = poolToXml(pool);
    expect(xml).not.toContain("s3cret-pw");
    const path = file("sanauth.xml", xml);
    // libvirt's schema knows <initiator> and <auth>: this one even validates.
    daemon.virsh(["pool-define", "--validate", path]);
    const dumped = daemon.virsh(["pool-dumpxml", "sanauth"]);
    expect(dumped).toMatch(/<auth type='chap' username='alice'>\s*<secret usage='virtkit-iscsi-sanauth'\/>/);
    expect(dumped).toContain("<iqn name='iqn.2026-01.org.example:host1'/>");
    const { password: _p, ...named } = pool.auth;
    const back = poolFromXml(dumped, { strict: true }).config;
    expect(back).toEqual({ ...pool, auth: { ...named, secret: { usage: "virtkit-iscsi-sanauth" } }, uuid: (back as { uuid?: string }).uuid });
    daemon.virsh(["pool-undefine", "sanauth"]); // libvirt refuses a second pool on the same target and initiator
    // A secret named by uuid, and the mutual account in virtkit's namespace, which libvirt skips.
    const uuid = "5b2c1e3a-9d4f-4e6a-8b7c-0d1e2f3a4b5c";
    const mutualPool = { ...pool, name: "sanmutual", auth: { type: "chap" as const, username: "alice", secret: { uuid }, mutual: { username: "tgt", password: "t-pw" } } };
    const mutualXml = poolToXml(mutualPool);
    expect(mutualXml).toContain("<virtkit:mutual_auth");
    daemon.virsh(["pool-define", file("sanmutual.xml", mutualXml)]);
    const mutualDump = daemon.virsh(["pool-dumpxml", "sanmutual"]);
    expect(mutualDump).toContain(`<secret uuid='${uuid}'/>`);
    expect(mutualDump).not.toContain("mutual_auth");
    daemon.virsh(["pool-undefine", "sanmutual"]);
  });

  it("vol-create takes volumeToXml's raw and backed qcow2 volumes; vol-dumpxml and qemu-img agree", () => {
    const raw = { name: "data.raw", capacityBytes: 8 * MiB, format: "raw" as const, allocationBytes: 2 * MiB };
    const top = { name: "top.qcow2", capacityBytes: 16 * MiB, format: "qcow2" as const, backing: { path: join(images, "base.raw"), format: "raw" } };
    for (const spec of [raw, top]) daemon.virsh(["vol-create", "images", file(`${spec.name}.xml`, volumeToXml(spec))]);
    const dumped = volumeFromXml(daemon.virsh(["vol-dumpxml", "--pool", "images", "data.raw"])).config;
    expect(dumped).toMatchObject({ name: "data.raw", capacityBytes: 8 * MiB, format: "raw" });
    expect(dumped.allocationBytes).toBeGreaterThanOrEqual(2 * MiB);
    const { allocationBytes: _allocated, ...topBack } = volumeFromXml(daemon.virsh(["vol-dumpxml", "--pool", "images", "top.qcow2"])).config;
    expect(topBack).toEqual(top);
    const info = JSON.parse(execFileSync("qemu-img", ["info", "-U", "--output=json", join(daemon.dir, "pool", "top.qcow2")], { encoding: "utf8" }));
    expect(info).toMatchObject({ format: "qcow2", "virtual-size": 16 * MiB, "backing-filename": join(images, "base.raw"), "backing-filename-format": "raw" });
  });
});
