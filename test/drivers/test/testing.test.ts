import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  ConflictError,
  connect,
  createVirtualClock,
  MiB,
  NotFoundError,
  StateError,
  type VirtualClock,
} from "../../../mod.ts";
import type { Connection } from "../../../core/connection.ts";
import { TEST_OPERATIONS } from "../../../drivers/test/mod.ts";

describe("conn.testing.failNext", () => {
  let conn: Connection;
  beforeEach(async () => {
    conn = await connect("test:///default", { clock: createVirtualClock() });
  });
  afterEach(() => conn.close());

  it("domain.start fails the next start with the very error, once, and changes nothing", async () => {
    const dom = await conn.domains.get("test");
    await dom.destroy();
    const injected = new Error("no boot today");
    conn.testing!.failNext("domain.start", injected);
    await expect(dom.start()).rejects.toBe(injected);
    expect((await dom.info()).state).toBe("shutoff");
    await dom.start();
    expect((await dom.info()).state).toBe("running");
  });

  it("domain.shutdown and domain.suspend fail their own verb only", async () => {
    const dom = await conn.domains.get("test");
    conn.testing!.failNext("domain.shutdown", new StateError("guest ignored ACPI", { state: "running" }));
    await dom.suspend();
    await dom.resume();
    await expect(dom.shutdown()).rejects.toThrow("guest ignored ACPI");
    expect((await dom.info()).state).toBe("running");
    await dom.shutdown();
    expect((await dom.info()).state).toBe("shutoff");
  });

  it("domains.define fails the next define, which defines nothing", async () => {
    conn.testing!.failNext("domains.define", new Error("disk full"));
    const config = { name: "web1", vcpus: 1, memoryBytes: MiB(64), disks: [] };
    await expect(conn.domains.define(config)).rejects.toThrow("disk full");
    expect((await conn.domains.list()).map((d) => d.name)).toEqual(["test"]);
    await conn.domains.define(config);
  });

  it("domain.blockPull fails the pull before a job exists", async () => {
    conn.testing!.failNext("domain.blockPull", new Error("pull refused"));
    const dom = await conn.domains.get("test");
    await expect(dom.blockPull("vda")).rejects.toThrow("pull refused");
    expect(await conn.jobs.list()).toEqual([]);
  });

  it("pool.refresh, volumes.create, volume.resize and volume.delete fail once each, leaving the pool as it was", async () => {
    const pool = await conn.pools.get("default-pool");
    conn.testing!.failNext("pool.refresh", new Error("refresh failed"));
    await expect(pool.refresh()).rejects.toThrow("refresh failed");
    await pool.refresh();

    conn.testing!.failNext("volumes.create", new Error("create failed"));
    await expect(pool.volumes.create({ name: "new.img", capacityBytes: MiB(1) })).rejects.toThrow("create failed");
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["template.img", "test.qcow2"]);
    const volume = await pool.volumes.create({ name: "new.img", capacityBytes: MiB(1) });

    conn.testing!.failNext("volume.resize", new Error("resize failed"));
    await expect(volume.resize(MiB(2))).rejects.toThrow("resize failed");
    expect((await volume.info()).capacityBytes).toBe(MiB(1));

    conn.testing!.failNext("volume.delete", new Error("delete failed"));
    await expect(volume.delete()).rejects.toThrow("delete failed");
    expect((await pool.volumes.list()).map((v) => v.name)).toContain("new.img");
    await volume.delete();
  });

  it("arming an operation twice fails its next two calls", async () => {
    const pool = await conn.pools.get("default-pool");
    conn.testing!.failNext("pool.info", new Error("first"));
    conn.testing!.failNext("pool.info", new Error("second"));
    await expect(pool.info()).rejects.toThrow("first");
    await expect(pool.info()).rejects.toThrow("second");
    expect((await pool.info()).state).toBe("active");
  });

  it("applies to memory pools the connection creates later, and only on this connection", async () => {
    const other = await connect("test:///default");
    try {
      const pool = await conn.pools.create({ name: "scratch", type: "memory", capacityBytes: MiB(64) });
      conn.testing!.failNext("volumes.list", new Error("listing failed"));
      await (await other.pools.get("default-pool")).volumes.list();
      await expect(pool.volumes.list()).rejects.toThrow("listing failed");
    } finally {
      await other.close();
    }
  });

  it("an unknown operation is a TypeError that lists the known ones; a non-Error is a TypeError", () => {
    expect(() => conn.testing!.failNext("domain.reboot", new Error("x"))).toThrow(TypeError);
    expect(() => conn.testing!.failNext("domain.reboot", new Error("x"))).toThrow(/"domain\.start".*"volume\.delete"/);
    expect(() => conn.testing!.failNext("domain.start", "boom" as unknown as Error)).toThrow(TypeError);
    expect(TEST_OPERATIONS).toContain("volumes.create");
  });
});

describe("conn.testing.failJob", () => {
  let clock: VirtualClock;
  let conn: Connection;
  beforeEach(async () => {
    clock = createVirtualClock();
    conn = await connect("test:///default", { clock });
  });
  afterEach(() => conn.close());

  it("without atBytes fails a running job now", async () => {
    const job = await (await conn.domains.get("test")).blockPull("vda", { bandwidth: MiB(10) });
    await clock.advance(200);
    conn.testing!.failJob(job.id, new Error("host went away"));
    await clock.advance(200);
    const info = await job.info();
    expect(info.state).toBe("failed");
    expect(info.error).toContain("host went away");
    expect((await (await conn.domains.get("test")).disks())[0]!.backingChain).toHaveLength(1);
  });

  it("refuses unknown and finished jobs, bad ids, non-errors and bad offsets", async () => {
    expect(() => conn.testing!.failJob("job-99", new Error("x"))).toThrow(NotFoundError);
    expect(() => conn.testing!.failJob("", new Error("x"))).toThrow(TypeError);
    const job = await (await conn.domains.get("test")).blockPull("vda");
    await job.wait();
    expect(() => conn.testing!.failJob(job.id, new Error("late"))).toThrow(StateError);
    const running = await (await conn.pools.get("default-pool")).volumes.get("template.img").then((v) => v.wipe({ bandwidth: MiB(1) }));
    expect(() => conn.testing!.failJob(running.id, "nope" as unknown as Error)).toThrow(TypeError);
    expect(() => conn.testing!.failJob(running.id, new Error("x"), { atBytes: -1 })).toThrow(RangeError);
    await running.abort();
  });
});

describe("conn.testing.load", () => {
  let conn: Connection;
  beforeEach(async () => {
    conn = await connect("test:///default", { clock: createVirtualClock() });
  });
  afterEach(() => conn.close());

  it("defines the fixture's domains in their states, with domain:defined events", async () => {
    const defined: string[] = [];
    conn.events.on("domain:defined", (e) => void defined.push(e.domain));
    await conn.testing!.load({
      domains: [
        { name: "web1", vcpus: 2, memoryBytes: MiB(512), state: "running", disks: [{ target: "vda", volume: { pool: "default-pool", name: "test.qcow2" } }] },
        { name: "web2", uuid: "3F9C2A61-8D1E-4B7A-9C55-0E2F6A7B8C9D", vcpus: 1, memoryBytes: MiB(256), disks: [] },
      ],
    });
    expect(defined).toEqual(["web1", "web2"]);
    expect((await (await conn.domains.get("web1")).info()).state).toBe("running");
    expect(await (await conn.domains.get("web2")).info()).toMatchObject({ state: "shutoff", uuid: "3f9c2a61-8d1e-4b7a-9c55-0e2f6a7b8c9d" });
  });

  it("is all or nothing: a bad second domain leaves the first undefined", async () => {
    const error = await conn.testing!.load({
      domains: [
        { name: "ok", vcpus: 1, memoryBytes: MiB(64), disks: [] },
        { name: "bad", vcpus: 1, memoryBytes: MiB(64), disks: [{ target: "vda", volume: { pool: "default-pool" } }] },
      ],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toContain("domains[1].disks[0].volume.name");
    expect((await conn.domains.list()).map((d) => d.name)).toEqual(["test"]);
  });

  it("refuses names the connection has, naming the fixture path", async () => {
    const domain = await conn.testing!.load({ domains: [{ name: "test", vcpus: 1, memoryBytes: MiB(64), disks: [] }] }).catch((e: unknown) => e);
    expect(domain).toBeInstanceOf(ConflictError);
    expect((domain as Error).message).toMatch(/^Cannot load fixture: domains\[0\]: Cannot define domain "test"/);
    const pool = await conn.testing!.load({ pools: [{ name: "default-pool", type: "memory" }] }).catch((e: unknown) => e);
    expect(pool).toBeInstanceOf(ConflictError);
    expect((pool as Error).message).toContain('pools[0] names pool "default-pool"');
  });

  it("refuses a running domain whose disk volume does not exist", async () => {
    const error = await conn.testing!.load({
      domains: [{ name: "w", vcpus: 1, memoryBytes: MiB(64), state: "running", disks: [{ target: "vda", volume: { pool: "default-pool", name: "no.img" } }] }],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toContain('domains[0].disks[0].volume names volume "no.img" of pool "default-pool", which does not exist');
  });

  it("a pool name core already has (defined, never built) is a ConflictError, and nothing of the fixture stays", async () => {
    const defined = await conn.pools.define({ name: "images", type: "memory" });
    const error = await conn.testing!.load({
      pools: [{ name: "images", type: "memory", volumes: [{ name: "a.img", capacityBytes: MiB(1) }] }],
      domains: [{ name: "vm", vcpus: 1, memoryBytes: MiB(64), disks: [] }],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((await conn.domains.list()).map((d) => d.name)).toEqual(["test"]);
    await defined.start();
    expect(await defined.volumes.list()).toEqual([]);
  });

  it("adds the fixture's memory pools, active, with their volumes, over volumes the connection has", async () => {
    await conn.testing!.load({
      pools: [{
        name: "images",
        type: "memory",
        capacityBytes: MiB(512),
        volumes: [
          { name: "overlay.qcow2", capacityBytes: MiB(256), format: "qcow2", backing: { pool: "default-pool", name: "template.img" } },
        ],
      }],
      domains: [{ name: "vm", vcpus: 1, memoryBytes: MiB(64), disks: [{ target: "vda", volume: { pool: "images", name: "overlay.qcow2" } }] }],
    });
    const pool = await conn.pools.get("images");
    expect(await pool.info()).toMatchObject({ state: "active", capacityBytes: MiB(512), allocationBytes: 0 });
    const [vda] = await (await conn.domains.get("vm")).disks();
    expect(vda!.backingChain).toEqual([{ path: "/default-pool/template.img", format: "raw" }]);
    await (await conn.domains.get("vm")).start();
  });
});
