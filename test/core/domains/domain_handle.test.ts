import { afterEach, describe, expect, it } from "vitest";
import { openConnection } from "../../../core/connect.ts";
import type { Connection } from "../../../core/connection.ts";
import type { DomainConfig } from "../../../core/domain.ts";
import { ConflictError, NotFoundError, StateError, UnsupportedError } from "../../../core/errors.ts";
import { createRegistry } from "../../../core/registry.ts";
import { createFakeHypervisor, domainConfig, type FakeHypervisorOptions, type FakeSession } from "../_fake_hypervisor.ts";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let conn: Connection | undefined;
afterEach(async () => {
  await conn?.close();
  conn = undefined;
});

async function open(options: FakeHypervisorOptions = {}): Promise<{ conn: Connection; session: FakeSession }> {
  const registry = createRegistry();
  const fake = createFakeHypervisor({ seed: [domainConfig("web1")], ...options });
  registry.register(fake.def);
  conn = await openConnection("fake:///", {}, registry);
  return { conn, session: fake.sessions[0]! };
}

const badNames: Array<{ what: string; name: unknown }> = [
  { what: "an empty name", name: "" },
  { what: "a 65-character name", name: "a".repeat(65) },
  { what: "a name with /", name: "a/b" },
  { what: "a name with \\", name: "a\\b" },
  { what: "..", name: ".." },
  { what: ".", name: "." },
  { what: "a name with NUL", name: "a\u0000b" },
  { what: "a name with a newline", name: "a\nb" },
  { what: "a number", name: 42 },
];

// Disk targets follow the general name rule (up to 255 characters), not the 64 of domain names.
const badDiskNames = [
  ...badNames.filter(({ what }) => what !== "a 65-character name"),
  { what: "a 256-character name", name: "v".repeat(256) },
];

describe("DomainCollection", () => {
  it("list() returns a handle per domain, in definition order", async () => {
    const { conn } = await open({ seed: [domainConfig("web1"), domainConfig("db1")] });
    const domains = await conn.domains.list();
    expect(domains.map((d) => d.name)).toEqual(["web1", "db1"]);
    expect(domains[0]!.uuid).toMatch(UUID_V4);
  });

  it("list() leaves out a domain undefined between listing and reading it", async () => {
    const { conn } = await open({ ghosts: ["gone"] });
    expect((await conn.domains.list()).map((d) => d.name)).toEqual(["web1"]);
  });

  it("listWithInfo() returns each handle with the info read while listing: one driver call per domain", async () => {
    const { conn, session } = await open({ seed: [domainConfig("web1"), domainConfig("db1")], ghosts: ["gone"] });
    await conn.domains.get("db1").then((d) => d.start());
    session.calls.length = 0;
    const listed = await conn.domains.listWithInfo();
    expect(listed.map(({ domain, info }) => [domain.name, info.name, info.state])).toEqual([["web1", "web1", "shutoff"], ["db1", "db1", "running"]]);
    expect(listed.map(({ domain }) => domain.uuid)).toEqual(listed.map(({ info }) => info.uuid));
    expect(session.calls).toEqual(["listDomains", "domainInfo web1", "domainInfo db1", "domainInfo gone"]);
    // The same infos as asking each handle afterwards.
    expect(await Promise.all(listed.map(({ domain }) => domain.info()))).toEqual(listed.map(({ info }) => info));
  });

  it("listWithInfo() makes an entry's handle once, when it is first asked for", async () => {
    const { conn } = await open({ seed: [domainConfig("web1")] });
    const [entry] = await conn.domains.listWithInfo();
    expect(entry!.domain).toBe(entry!.domain);
    expect(entry!.domain).not.toBe((await conn.domains.listWithInfo())[0]!.domain);
    await conn.close();
    // A handle made after the close still refuses to act, as one made before does.
    await expect((await conn.domains.listWithInfo().catch(() => [entry!]))[0]!.domain.info()).rejects.toThrow(/^Cannot read domain "web1": connection ".*" is closed$/);
  });

  it("get() asks the driver, so NotFoundError comes from it", async () => {
    const { conn, session } = await open();
    const dom = await conn.domains.get("web1");
    expect(dom.name).toBe("web1");
    expect(dom.uuid).toBe(session.domains.get("web1")!.config.uuid);
    const error = await conn.domains.get("nope").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).driver).toBe("fake");
    expect(session.calls).toContain("domainInfo nope");
  });

  it("get() accepts a 64-character name", async () => {
    const { conn } = await open({ seed: [domainConfig("a".repeat(64))] });
    expect((await conn.domains.get("a".repeat(64))).name.length).toBe(64);
  });

  it.each(badNames)("get() throws TypeError for $what, without asking the driver", async ({ name }) => {
    const { conn, session } = await open();
    await expect(conn.domains.get(name as string)).rejects.toBeInstanceOf(TypeError);
    expect(session.calls).toEqual([]);
  });

  it("define() hands the driver a normalized copy with a generated UUID", async () => {
    const { conn, session } = await open({ seed: [] });
    const config: DomainConfig = {
      name: "web2",
      vcpus: 2,
      memoryBytes: 512 << 20,
      machine: "q35",
      disks: [
        { target: "vda", volume: { pool: "default-pool", name: "web2.qcow2" }, format: "qcow2" },
        { target: "vdb", path: "/images/data.raw", readonly: true },
      ],
    };
    const before = structuredClone(config);
    const dom = await conn.domains.define(config);
    expect(config).toEqual(before);
    const stored = session.domains.get("web2")!.config;
    expect(stored).not.toBe(config);
    expect(stored.disks[0]).not.toBe(config.disks[0]);
    expect(stored).toEqual({ ...config, uuid: dom.uuid });
    expect(dom.uuid).toMatch(UUID_V4);
  });

  it("define() keeps a given UUID, lower-cased", async () => {
    const { conn } = await open({ seed: [] });
    const libvirtTest = await conn.domains.define(domainConfig("web3", { uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f" }));
    expect(libvirtTest.uuid).toBe("6695eb01-f6a4-8304-79aa-97f2502e193f");
    const dom = await conn.domains.define(domainConfig("web2", { uuid: "6F1E3A4C-54D6-4A8E-9F6E-1B2C3D4E5F60" }));
    expect(dom.uuid).toBe("6f1e3a4c-54d6-4a8e-9f6e-1b2c3d4e5f60");
  });

  it("define() passes the driver's ConflictError for a taken name", async () => {
    const { conn } = await open();
    await expect(conn.domains.define(domainConfig("web1"))).rejects.toBeInstanceOf(ConflictError);
  });

  it("define() throws UnsupportedError when the driver cannot define domains", async () => {
    const { conn } = await open({ omit: ["defineDomain"] });
    await expect(conn.domains.define(domainConfig("web2"))).rejects.toBeInstanceOf(UnsupportedError);
  });

  const disk = { target: "vda", path: "/images/a.qcow2" };
  it.each([
    ...badNames.map(({ what, name }) => ({ what: `name: ${what}`, patch: { name }, error: TypeError })),
    { what: "vcpus 0", patch: { vcpus: 0 }, error: RangeError },
    { what: "vcpus 1.5", patch: { vcpus: 1.5 }, error: RangeError },
    { what: "vcpus -1", patch: { vcpus: -1 }, error: RangeError },
    { what: "vcpus 5000", patch: { vcpus: 5000 }, error: RangeError },
    { what: 'vcpus "2"', patch: { vcpus: "2" }, error: TypeError },
    { what: "no vcpus", patch: { vcpus: undefined }, error: TypeError },
    { what: "memoryBytes -1", patch: { memoryBytes: -1 }, error: RangeError },
    { what: "memoryBytes NaN", patch: { memoryBytes: NaN }, error: RangeError },
    { what: "memoryBytes 2**60", patch: { memoryBytes: 2 ** 60 }, error: RangeError },
    { what: "memoryBytes 0", patch: { memoryBytes: 0 }, error: RangeError },
    { what: "memoryBytes 1.5", patch: { memoryBytes: 1.5 }, error: RangeError },
    { what: 'memoryBytes "1G"', patch: { memoryBytes: "1G" }, error: TypeError },
    { what: "a malformed uuid", patch: { uuid: "not-a-uuid" }, error: TypeError },
    { what: "a uuid whose digits are all the same", patch: { uuid: "00000000-0000-0000-0000-000000000000" }, error: TypeError },
    { what: "a uuid with a non-hex digit", patch: { uuid: "6695eb01-f6a4-8304-79aa-97f2502e193g" }, error: TypeError },
    { what: "a machine with a space", patch: { machine: "q 35" }, error: TypeError },
    { what: "an unknown field", patch: { memory: 1024 }, error: TypeError },
    { what: "disks that are not an array", patch: { disks: {} }, error: TypeError },
    { what: "duplicate disk targets", patch: { disks: [disk, { ...disk, path: "/images/b.qcow2" }] }, error: TypeError },
    { what: "a disk with both volume and path", patch: { disks: [{ ...disk, volume: { pool: "p", name: "v" } }] }, error: TypeError },
    { what: "a disk with neither volume nor path", patch: { disks: [{ target: "vda" }] }, error: TypeError },
    { what: "a disk target with /", patch: { disks: [{ ...disk, target: "v/da" }] }, error: TypeError },
    { what: "an empty disk target", patch: { disks: [{ ...disk, target: "" }] }, error: TypeError },
    { what: "a disk that is not an object", patch: { disks: ["vda"] }, error: TypeError },
    { what: "an empty disk path", patch: { disks: [{ target: "vda", path: "" }] }, error: TypeError },
    { what: "a disk path with NUL", patch: { disks: [{ target: "vda", path: "/a\u0000b" }] }, error: TypeError },
    { what: "a disk volume with a bad pool name", patch: { disks: [{ target: "vda", volume: { pool: "..", name: "v" } }] }, error: TypeError },
    { what: "a disk volume with a bad volume name", patch: { disks: [{ target: "vda", volume: { pool: "p", name: "a/b" } }] }, error: TypeError },
    { what: "a disk with an unknown field", patch: { disks: [{ ...disk, readOnly: true }] }, error: TypeError },
    { what: "a disk with a bad format", patch: { disks: [{ ...disk, format: "QCOW 2" }] }, error: TypeError },
    { what: "a disk with a non-boolean readonly", patch: { disks: [{ ...disk, readonly: "yes" }] }, error: TypeError },
  ])("define() throws for $what, without calling the driver", async ({ patch, error }) => {
    const { conn, session } = await open({ seed: [] });
    const config = { ...domainConfig("web2"), ...patch } as DomainConfig;
    await expect(conn.domains.define(config)).rejects.toBeInstanceOf(error);
    expect(session.calls).toEqual([]);
  });

  it("define() throws TypeError for a config that is not an object", async () => {
    const { conn } = await open();
    await expect(conn.domains.define(null as never)).rejects.toBeInstanceOf(TypeError);
  });

  it("define() names the domain and the field in the message", async () => {
    const { conn } = await open();
    await expect(conn.domains.define({ ...domainConfig("web2"), vcpus: 0 }))
      .rejects.toThrow('Invalid domain config "web2": vcpus: 0: it is not a whole number from 1 to 4096');
    const twice = { ...domainConfig("web2"), disks: [disk, { ...disk }] };
    await expect(conn.domains.define(twice)).rejects.toThrow('Invalid domain config "web2": disks[1]: disk target "vda" is used twice');
  });
});

describe("Domain", () => {
  it("dispatches to the driver and passes its errors through", async () => {
    const { conn, session } = await open();
    const dom = await conn.domains.get("web1");
    await dom.start();
    expect((await dom.info()).state).toBe("running");
    const error = await dom.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateError);
    await dom.destroy();
    expect((await dom.config()).name).toBe("web1");
    expect(session.calls.filter((c) => !c.startsWith("domainInfo"))).toEqual([
      "startDomain web1",
      "startDomain web1",
      "destroyDomain web1",
      "domainConfig web1",
    ]);
  });

  it.each([
    { method: "suspend", operation: "suspendDomain" },
    { method: "resume", operation: "resumeDomain" },
    { method: "shutdown", operation: "shutdownDomain" },
    { method: "undefine", operation: "undefineDomain" },
    { method: "disks", operation: "domainDisks" },
  ] as const)("$method() throws UnsupportedError when the driver has no $operation", async ({ method, operation }) => {
    const { conn } = await open();
    const dom = await conn.domains.get("web1");
    const error = await dom[method]().then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedError);
    expect((error as UnsupportedError).operation).toBe(operation);
    expect((error as UnsupportedError).driver).toBe("fake");
  });

  it.each([
    { what: "-1", timeoutMs: -1, error: RangeError },
    { what: "1.5", timeoutMs: 1.5, error: RangeError },
    { what: '"10"', timeoutMs: "10", error: TypeError },
  ])("shutdown() throws for timeoutMs $what before dispatching", async ({ timeoutMs, error }) => {
    const { conn } = await open();
    const dom = await conn.domains.get("web1");
    await expect(dom.shutdown({ timeoutMs: timeoutMs as number })).rejects.toBeInstanceOf(error);
  });

  it("rejects with the signal's reason before calling the driver", async () => {
    const { conn, session } = await open();
    const dom = await conn.domains.get("web1");
    session.calls.length = 0;
    const reason = new DOMException("stop", "AbortError");
    await expect(dom.start({ signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(session.calls).toEqual([]);
  });
});

describe("Domain.blockPull() and blockJob()", () => {
  it("hands a running domain's pull to the driver with the bandwidth normalized and the disk's lock, and blockJob() finds it until it ends", async () => {
    const { conn, session } = await open();
    const dom = await conn.domains.get("web1");
    await dom.start();
    expect(await dom.blockJob("vda")).toBeUndefined();
    const job = await dom.blockPull("vda");
    expect(session.calls).toContain('liveBlockPull web1 vda {"bandwidth":0,"locks":["disk:web1/vda"]}');
    expect(job.target).toEqual({ domain: "web1", disk: "vda" });
    expect((await dom.blockJob("vda"))?.id).toBe(job.id);
    expect(await dom.blockJob("vdb")).toBeUndefined();
    session.jobs[0]!.complete(undefined);
    await job.wait();
    expect(await dom.blockJob("vda")).toBeUndefined();
  });

  it("passes the bandwidth and base on", async () => {
    const { conn, session } = await open();
    const dom = await conn.domains.get("web1");
    await dom.start();
    await dom.blockPull("vda", { bandwidth: 1 << 20, base: "/images/base.qcow2" });
    expect(session.calls).toContain('liveBlockPull web1 vda {"bandwidth":1048576,"base":"/images/base.qcow2","locks":["disk:web1/vda"]}');
  });

  it("throws NotFoundError for an unknown disk without asking the driver to pull", async () => {
    const { conn, session } = await open();
    const dom = await conn.domains.get("web1");
    await dom.start();
    await expect(dom.blockPull("vdz")).rejects.toBeInstanceOf(NotFoundError);
    expect(session.calls.some((c) => c.startsWith("liveBlockPull"))).toBe(false);
  });

  it.each([
    ...badDiskNames.map(({ what, name }) => ({ what: `disk: ${what}`, disk: name, options: {}, error: TypeError })),
    { what: "bandwidth -1", disk: "vda", options: { bandwidth: -1 }, error: RangeError },
    { what: "bandwidth 1.5", disk: "vda", options: { bandwidth: 1.5 }, error: RangeError },
    { what: "bandwidth NaN", disk: "vda", options: { bandwidth: NaN }, error: RangeError },
    { what: "bandwidth Infinity", disk: "vda", options: { bandwidth: Infinity }, error: RangeError },
    { what: 'bandwidth "1M"', disk: "vda", options: { bandwidth: "1M" }, error: TypeError },
    { what: "an empty base", disk: "vda", options: { base: "" }, error: TypeError },
    { what: "a base with NUL", disk: "vda", options: { base: "/a\u0000" }, error: TypeError },
  ])("throws for $what, without calling the driver", async ({ disk, options, error }) => {
    const { conn, session } = await open();
    const dom = await conn.domains.get("web1");
    session.calls.length = 0;
    await expect(dom.blockPull(disk as string, options as never)).rejects.toBeInstanceOf(error);
    expect(session.calls).toEqual([]);
  });

  it("blockJob() throws TypeError for a bad disk name", async () => {
    const { conn } = await open();
    const dom = await conn.domains.get("web1");
    await expect(dom.blockJob("../vda")).rejects.toBeInstanceOf(TypeError);
  });

  it("throws UnsupportedError naming the driver when it cannot pull a running domain", async () => {
    const { conn } = await open({ omit: ["liveBlockPull"] });
    const dom = await conn.domains.get("web1");
    await dom.start();
    const error = await dom.blockPull("vda").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedError);
    expect((error as Error).message).toBe('Operation "liveBlockPull" is not supported by driver "fake"');
  });
});
