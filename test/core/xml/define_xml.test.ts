/**
 * `conn.domains.defineXml()` / `dom.xml()` and `conn.pools.defineXml()` / `pool.xml()`, through core on
 * the `test` driver (every driver gets them from core): libvirt's own XML in, libvirt XML out.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { connect, UnsupportedError } from "../../../mod.ts";
import type { XmlWarning } from "../../../core/xml/mod.ts";
import { domainFromXml, poolFromXml } from "../../../core/xml/mod.ts";

const corpus = (name: string) => readFileSync(join(import.meta.dirname, "..", "..", "fixtures", "libvirt_xml", name), "utf8");

describe("defineXml and xml() on a connection", () => {
  it("a libvirt dumpxml defines a domain; dropped elements reach onWarning; xml() writes it back", async () => {
    await using conn = await connect("test:///empty");
    const warnings: XmlWarning[] = [];
    const dom = await conn.domains.defineXml(corpus("test_driver_domain.xml").replace("<name>test</name>", "<name>imported</name>"), {
      onWarning: (w) => warnings.push(w),
    });
    expect(dom.name).toBe("imported");
    expect(dom.uuid).toBe("6695eb01-f6a4-8304-79aa-97f2502e193f");
    expect(warnings.map((w) => w.path)).toContain("devices/interface");
    expect(await dom.config()).toMatchObject({ vcpus: 2, memoryBytes: 8 * 2 ** 30, machine: "q35", disks: [{ target: "vda", path: "/guest/diskimage1" }] });
    const { config, warnings: again } = domainFromXml(await dom.xml());
    expect(config).toEqual(await dom.config());
    expect(again).toEqual([]);
    expect(await dom.xml({ hypervisor: "test" })).toMatch(/^<domain type="test">/);
  });

  it("strict defineXml refuses what it would drop and defines nothing", async () => {
    await using conn = await connect("test:///empty");
    await expect(conn.domains.defineXml(corpus("test_driver_domain.xml"), { strict: true })).rejects.toThrow(/strict.*devices\/interface/);
    expect(await conn.domains.list()).toEqual([]);
    await expect(conn.domains.defineXml("<domain><name>x</name>")).rejects.toBeInstanceOf(TypeError);
  });

  it("the seeded domain's xml() is accepted back by defineXml under another name", async () => {
    await using conn = await connect("test:///default");
    const xml = await (await conn.domains.get("test")).xml();
    const copy = xml.replace("<name>test</name>", "<name>copy</name>").replace(/<uuid>.*<\/uuid>/, "");
    const dom = await conn.domains.defineXml(copy);
    const { name: _n, uuid: _u, ...rest } = await dom.config();
    const { name: _n2, uuid: _u2, ...original } = await (await conn.domains.get("test")).config();
    expect(rest).toEqual(original);
  });

  it("pools: a libvirt pool-dumpxml defines a dir pool on any connection; xml() writes it; memory pools have no libvirt XML", async () => {
    await using conn = await connect("test:///default");
    const warnings: XmlWarning[] = [];
    const pool = await conn.pools.defineXml(corpus("pool_dir_active.xml"), { onWarning: (w) => warnings.push(w) });
    expect(pool.type).toBe("dir");
    expect(warnings.map((w) => w.path)).toEqual(["target/permissions"]);
    expect(poolFromXml(await pool.xml(), { strict: true }).config).toEqual(await pool.config());
    await expect((await conn.pools.get("default-pool")).xml()).rejects.toBeInstanceOf(UnsupportedError);
    await expect(conn.pools.defineXml("<pool type='rbd'><name>ceph</name></pool>")).rejects.toBeInstanceOf(UnsupportedError);
    await expect(conn.pools.defineXml(corpus("pool_dir_active.xml"), { strict: true })).rejects.toThrow(/target\/permissions/);
    expect((await conn.pools.list()).map((p) => p.name).sort()).toEqual(["default-pool", "images"]);
  });
});
