/**
 * Real libvirt output (test/fixtures/libvirt_xml/, captured from libvirtd 9.0 by
 * scripts/capture_libvirt_xml.ts) parses back to the configs those objects were made from, and what
 * virtkit does not model comes back as warnings with their paths.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { disksFromDomainXml, domainFromXml, poolFromXml, volumeFromXml } from "../../../core/xml/mod.ts";

const DIR = "/var/lib/virtkit-corpus";
const corpus = (name: string) => readFileSync(join(import.meta.dirname, "..", "..", "fixtures", "libvirt_xml", name), "utf8");
const paths = (warnings: { path: string }[]) => warnings.map((w) => w.path);

const web1 = {
  name: "web1",
  uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f",
  vcpus: 2,
  memoryBytes: 64 * 2 ** 20,
  // libvirt resolves the machine alias q35 to the versioned machine of its QEMU.
  machine: "pc-q35-7.2",
  disks: [
    { target: "vda", path: `${DIR}/images/web1.qcow2`, format: "qcow2" },
    { target: "vdb", volume: { pool: "images", name: "data.raw" }, format: "raw", readonly: true },
  ],
};

describe("libvirt's own XML, parsed", () => {
  it("a domain libvirt completed with its defaults (inactive and running) gives the config back, no warnings", () => {
    for (const file of ["domain_web1_inactive.xml", "domain_web1_running.xml"]) {
      const { config, warnings } = domainFromXml(corpus(file), { strict: true });
      expect(config).toEqual(web1);
      expect(warnings).toEqual([]);
    }
  });

  it("the running domain's disks carry libvirt's backing chains; the inactive definition has none", () => {
    expect(disksFromDomainXml(corpus("domain_web1_running.xml"))).toEqual([
      { target: "vda", path: `${DIR}/images/web1.qcow2`, format: "qcow2", backingChain: [{ path: `${DIR}/images/base.raw`, format: "raw" }] },
      { target: "vdb", path: "images/data.raw", format: "raw", backingChain: [], volume: { pool: "images", name: "data.raw" } },
    ]);
    expect(disksFromDomainXml(corpus("domain_web1_inactive.xml"))[0]?.backingChain).toEqual([]);
  });

  it("libvirt's test-driver domain: what virtkit does not model is reported, and strict refuses it", () => {
    const xml = corpus("test_driver_domain.xml");
    const { config, warnings } = domainFromXml(xml);
    expect(config).toMatchObject({ name: "test", vcpus: 2, memoryBytes: 8 * 2 ** 30, disks: [{ target: "vda", path: "/guest/diskimage1" }] });
    expect(paths(warnings)).toEqual(["currentMemory", "os/type@arch", "devices/memballoon", "devices/interface"]);
    expect(() => domainFromXml(xml, { strict: true })).toThrow(/strict.*devices\/interface/);
  });

  it("pools made with pool-define-as: dir (inactive, active), logical, iscsi, and the test driver's", () => {
    const dir = { name: "images", type: "dir", path: `${DIR}/pool` };
    const inactive = poolFromXml(corpus("pool_dir_inactive.xml"), { strict: true });
    expect(inactive.config).toEqual({ ...dir, uuid: inactive.config.uuid });
    const active = poolFromXml(corpus("pool_dir_active.xml"));
    expect(active.config).toEqual(inactive.config);
    expect(paths(active.warnings)).toEqual(["target/permissions"]);
    expect(poolFromXml(corpus("pool_logical.xml"), { strict: true }).config).toMatchObject({
      name: "vg0", type: "logical", volumeGroup: "vg0", devices: ["/dev/loop7"],
    });
    const iscsi = poolFromXml(corpus("pool_iscsi.xml"), { strict: true }).config;
    expect(iscsi).toMatchObject({ name: "san", type: "iscsi", host: "127.0.0.1", target: "iqn.2026-01.org.example:disks" });
    expect("port" in iscsi).toBe(false);
    expect(poolFromXml(corpus("test_driver_pool.xml"), { strict: true }).config).toEqual({
      name: "default-pool", uuid: "dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566", type: "dir", path: "/default-pool",
    });
  });

  it("volumes made with vol-create-as: sizes in bytes, allocation, format, backing store", () => {
    expect(volumeFromXml(corpus("vol_data_raw.xml")).config).toEqual({ name: "data.raw", capacityBytes: 8 * 2 ** 20, allocationBytes: 2 ** 20, format: "raw" });
    const top = volumeFromXml(corpus("vol_top_qcow2.xml"));
    expect(top.config).toMatchObject({
      name: "top.qcow2", capacityBytes: 16 * 2 ** 20, format: "qcow2", backing: { path: `${DIR}/pool/base.qcow2`, format: "qcow2" },
    });
    // The permissions libvirt reports are the file's; virtkit's pools decide them, so they are dropped, and said so.
    expect(paths(top.warnings)).toEqual(["target/permissions"]);
    expect(volumeFromXml(corpus("vol_base_qcow2.xml")).config.backing).toBeUndefined();
  });
});
