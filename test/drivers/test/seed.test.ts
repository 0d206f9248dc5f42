import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connect, ConnectError, createVirtualClock, MiB, GiB } from "../../../mod.ts";
import type { Connection } from "../../../core/connection.ts";
import type { Extent, Volume } from "../../../core/volume.ts";
import { DEFAULT_DOMAIN_UUID } from "../../../drivers/test/mod.ts";

async function readRange(volume: Volume, offset: number, length: number): Promise<Uint8Array> {
  const job = await volume.download({ offset, length });
  const out = new Uint8Array(length);
  let at = 0;
  const reader = job.readable.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    out.set(r.value, at);
    at += r.value.byteLength;
  }
  await job.wait();
  expect(at).toBe(length);
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i]);
}

async function extentsOf(volume: Volume): Promise<Extent[]> {
  const out: Extent[] = [];
  for await (const extent of volume.extents()) out.push(extent);
  return out;
}

describe("test:///default seed", () => {
  let conn: Connection;
  beforeEach(async () => {
    conn = await connect("test:///default", { clock: createVirtualClock() });
  });
  afterEach(() => conn.close());

  it("has the running domain test with libvirt's UUID, 2 vCPUs and 2 GiB", async () => {
    expect((await conn.domains.list()).map((d) => d.name)).toEqual(["test"]);
    const dom = await conn.domains.get("test");
    expect(await dom.info()).toEqual({ name: "test", uuid: DEFAULT_DOMAIN_UUID, state: "running", vcpus: 2, memoryBytes: GiB(2) });
    expect(dom.uuid).toBe("6695eb01-f6a4-8304-79aa-97f2502e193f");
    const config = await dom.config();
    expect(config.disks).toEqual([{ target: "vda", volume: { pool: "default-pool", name: "test.qcow2" }, format: "qcow2" }]);
  });

  it("has the active pool default-pool of 100 GiB holding the template and the thin disk", async () => {
    const pools = await conn.pools.list();
    expect(pools.map((p) => [p.name, p.type])).toEqual([["default-pool", "memory"]]);
    const info = await pools[0]!.info();
    expect(info.state).toBe("active");
    expect(info.capacityBytes).toBe(GiB(100));
    // 97 MiB of template data and 5 MiB of the thin disk's own.
    expect(info.allocationBytes).toBe(MiB(102));
    expect(info.availableBytes).toBe(GiB(100) - MiB(102));
    const volumes = await pools[0]!.volumes.list();
    expect(volumes.map((v) => [v.name, v.key, v.path])).toEqual([
      ["template.img", "/default-pool/template.img", "/default-pool/template.img"],
      ["test.qcow2", "/default-pool/test.qcow2", "/default-pool/test.qcow2"],
    ]);
  });

  it("volume info: raw physical is the capacity, qcow2 physical the allocation, and the thin disk records its backing", async () => {
    const pool = await conn.pools.get("default-pool");
    expect(await (await pool.volumes.get("template.img")).info()).toEqual({
      capacityBytes: MiB(256),
      allocationBytes: MiB(97),
      physicalBytes: MiB(256),
      format: "raw",
    });
    expect(await (await pool.volumes.get("test.qcow2")).info()).toEqual({
      capacityBytes: MiB(256),
      allocationBytes: MiB(5),
      physicalBytes: MiB(5),
      format: "qcow2",
      backing: { path: "/default-pool/template.img", format: "raw" },
    });
  });

  it("the template has data and holes; the thin disk maps its own data at depth 0 and the template's at depth 1", async () => {
    const pool = await conn.pools.get("default-pool");
    const template = await extentsOf(await pool.volumes.get("template.img"));
    expect(template.filter((e) => e.data).map((e) => [e.offset / MiB(1), e.length / MiB(1)])).toEqual([[0, 64], [128, 32], [224, 1]]);
    expect(template.every((e) => e.depth === 0)).toBe(true);
    const thin = await extentsOf(await pool.volumes.get("test.qcow2"));
    const data = thin.filter((e) => e.data).map((e) => [e.offset / MiB(1), e.length / MiB(1), e.depth]);
    expect(data).toEqual([[0, 1, 0], [1, 63, 1], [128, 32, 1], [160, 4, 0], [224, 1, 1]]);
  });

  it("the thin disk reads its own bytes where it has them and the template's elsewhere", async () => {
    const pool = await conn.pools.get("default-pool");
    const template = await pool.volumes.get("template.img");
    const thin = await pool.volumes.get("test.qcow2");
    const head = await readRange(thin, 0, MiB(2));
    const templateHead = await readRange(template, 0, MiB(2));
    expect(sameBytes(head.subarray(MiB(1)), templateHead.subarray(MiB(1)))).toBe(true);
    expect(sameBytes(head.subarray(0, MiB(1)), templateHead.subarray(0, MiB(1)))).toBe(false);
    expect(templateHead.some((b) => b !== 0)).toBe(true);
    expect((await readRange(thin, MiB(160), 4096)).every((b) => b === 0x55)).toBe(true);
    expect((await readRange(thin, MiB(224), 4096)).every((b) => b === 0xaa)).toBe(true);
    expect((await readRange(thin, MiB(100), 4096)).every((b) => b === 0)).toBe(true);
  });

  it("disks() resolves vda to the thin volume with the template as its backing chain", async () => {
    const dom = await conn.domains.get("test");
    expect(await dom.disks()).toEqual([{
      target: "vda",
      path: "/default-pool/test.qcow2",
      format: "qcow2",
      backingChain: [{ path: "/default-pool/template.img", format: "raw" }],
      volume: { pool: "default-pool", name: "test.qcow2" },
    }]);
  });

  it("every connection has its own state", async () => {
    const other = await connect("test:///default");
    try {
      await (await conn.domains.get("test")).destroy();
      await (await conn.pools.get("default-pool")).volumes.create({ name: "only-here.img", capacityBytes: MiB(1) });
      expect((await (await other.domains.get("test")).info()).state).toBe("running");
      const names = (await (await other.pools.get("default-pool")).volumes.list()).map((v) => v.name);
      expect(names).toEqual(["template.img", "test.qcow2"]);
    } finally {
      await other.close();
    }
  });

  it("connection.driver is test and conn.testing is present", () => {
    expect(conn.driver).toBe("test");
    expect(typeof conn.testing?.failNext).toBe("function");
  });
});

describe("test:///empty and URIs", () => {
  it("test:///empty has no domains and no pools", async () => {
    await using conn = await connect("test:///empty");
    expect(await conn.domains.list()).toEqual([]);
    expect(await conn.pools.list()).toEqual([]);
  });

  it.each([
    { uri: "test:///nothing", detail: /unknown path "\/nothing"/ },
    { uri: "test://host/default", detail: /no host "host"/ },
    { uri: "test:///default?x=1", detail: /unknown parameter "x"/ },
    { uri: "test:///relative.txt", detail: /unknown path/ },
  ])("$uri is refused with a ConnectError that says which URIs work", async ({ uri, detail }) => {
    const error = await connect(uri).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toMatch(detail);
    expect((error as Error).message).toContain("test:///default, test:///empty");
  });
});
