/**
 * A `logical` pool's `thinPool` in pool XML: virtkit's namespaced `<virtkit:thin_pool name=.../>` (libvirt
 * has no thin pool element), read under any prefix bound to the namespace, and nothing else taken for it.
 */
import { describe, expect, it } from "vitest";
import { connect } from "../../../mod.ts";
import { poolFromXml, poolToXml, VIRTKIT_POOL_NS } from "../../../core/xml/mod.ts";

const config = { name: "vg0", type: "logical" as const, volumeGroup: "vg0", devices: ["/dev/loop7"], thinPool: "tp0" };

describe("pool XML: a logical pool's thin pool", () => {
  it("is written as <virtkit:thin_pool> in virtkit's namespace and read back, strict", () => {
    const xml = poolToXml(config);
    expect(xml).toContain(`<pool type="logical" xmlns:virtkit="${VIRTKIT_POOL_NS}">`);
    expect(xml).toContain('<virtkit:thin_pool name="tp0"/>');
    expect(poolFromXml(xml, { strict: true })).toEqual({ config, warnings: [] });
    // Without one, neither the element nor the namespace is written.
    const { thinPool: _t, ...linear } = config;
    expect(poolToXml(linear)).not.toContain("xmlns:virtkit");
  });

  it("is read under whatever prefix the document binds the namespace to", () => {
    const xml = `<pool type='logical' xmlns:vk='${VIRTKIT_POOL_NS}'><name>vg0</name>
      <source><device path='/dev/loop7'/><name>vg0</name><format type='lvm2'/></source>
      <target><path>/dev/vg0</path></target><vk:thin_pool name='tp0'/></pool>`;
    expect(poolFromXml(xml, { strict: true }).config).toEqual(config);
  });

  it("an element of that name under another namespace is not ours: dropped with a warning (strict: a TypeError)", () => {
    const xml = `<pool type='logical' xmlns:vk='http://example.org/other'><name>vg0</name><source><name>vg0</name></source>
      <vk:thin_pool name='tp0'/></pool>`;
    const { config: back, warnings } = poolFromXml(xml);
    expect(back).toEqual({ name: "vg0", type: "logical", volumeGroup: "vg0" });
    expect(warnings.map((w) => w.path)).toEqual(["pool@xmlns:vk", "vk:thin_pool"]);
    expect(() => poolFromXml(xml, { strict: true })).toThrow(TypeError);
  });

  it("a thin pool without a name, or with a name LVM refuses, is a TypeError", () => {
    const head = `<pool type='logical' xmlns:virtkit='${VIRTKIT_POOL_NS}'><name>vg0</name><source><name>vg0</name></source>`;
    expect(() => poolFromXml(`${head}<virtkit:thin_pool/></pool>`)).toThrow("virtkit:thin_pool needs a non-empty name attribute");
    expect(() => poolFromXml(`${head}<virtkit:thin_pool name='-bad'/></pool>`)).toThrow(/thinPool may hold only letters/);
  });

  it("survives conn.pools.defineXml() and pool.xml(): config() keeps it, the XML written back has it", async () => {
    await using conn = await connect("test:///empty");
    const pool = await conn.pools.defineXml(poolToXml(config), { strict: true });
    expect(await pool.config()).toEqual(config);
    expect(poolFromXml(await pool.xml(), { strict: true }).config).toEqual(config);
  });
});
