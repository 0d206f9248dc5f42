import { describe, expect, it } from "vitest";
import { connect, ConnectError, MiB } from "../../../mod.ts";
import type { Extent } from "../../../core/volume.ts";
import { parseFixture } from "../../../drivers/test/mod.ts";

const fixturePath = (name: string) => new URL(`../../fixtures/test_driver/${name}`, import.meta.url).pathname;

const volumes = (list: unknown[]) => ({ pools: [{ name: "p", type: "memory", volumes: list }] });
const row = (value: unknown, type: typeof TypeError | typeof RangeError, message: string) => ({ value, type, message });

describe("parseFixture", () => {
  it("fills in defaults and lower-cases UUIDs", () => {
    const fixture = parseFixture({
      pools: [{ name: "p", type: "memory", volumes: [{ name: "a", capacityBytes: 4096 }] }],
      domains: [{ name: "d", uuid: "3F9C2A61-8D1E-4B7A-9C55-0E2F6A7B8C9D", vcpus: 1, memoryBytes: 1, disks: [] }],
    });
    expect(fixture.pools![0]!.volumes![0]).toEqual({ name: "a", capacityBytes: 4096, format: "raw" });
    expect(fixture.domains![0]!.uuid).toBe("3f9c2a61-8d1e-4b7a-9c55-0e2f6a7b8c9d");
    expect(parseFixture({})).toEqual({ pools: [], domains: [] });
  });

  it.each([
    row(null, TypeError, "expected Object, got null"),
    row({ pool: [] }, TypeError, 'unknown field "pool"'),
    row({ pools: {} }, TypeError, "pools: expected Array, got object"),
    row({ pools: [{ name: "p", type: "dir" }] }, TypeError, 'pools[0].type: is "dir", expected "memory"'),
    row({ pools: [{ name: "a/b", type: "memory" }] }, TypeError, "pools[0].name"),
    row({ pools: [{ name: "p", type: "memory", capacityBytes: 1.5 }] }, RangeError, "pools[0].capacityBytes: 1.5: it is not a whole number of bytes"),
    row({ pools: [{ name: "p", type: "memory", capacityBytes: 0 }] }, RangeError, "pools[0].capacityBytes: 0: it is not"),
    row(volumes([{ name: "a", capacityBytes: 0 }]), RangeError, "pools[0].volumes[0].capacityBytes: 0: it is not"),
    row(volumes([{ name: "a", capacityBytes: 1 }, { name: "b", capacityBytes: -1 }]), RangeError, "pools[0].volumes[1].capacityBytes"),
    row(volumes([{ name: "a", capacityBytes: "1G" }]), TypeError, 'pools[0].volumes[0].capacityBytes: expected number, got "1G"'),
    row(volumes([{ name: "a", capacityBytes: 1, format: "vmdk" }]), TypeError, "pools[0].volumes[0].format"),
    row(volumes([{ name: "a", capacityBytes: 1, backing: { pool: "p", name: "b" } }]), TypeError, 'pools[0].volumes[0]: backing needs format "qcow2"'),
    row(volumes([{ name: "a", capacityBytes: 1, format: "qcow2", backing: { pool: "p" } }]), TypeError, "pools[0].volumes[0].backing.name"),
    row(volumes([{ name: "a", capacityBytes: 1 }, { name: "a", capacityBytes: 1 }]), TypeError, 'pools[0].volumes[1]: volume "a" is used twice'),
    row(
      volumes([{ name: "a", capacityBytes: 4096, content: [{ offset: 0, length: 8192, fill: 1 }] }]),
      RangeError,
      "pools[0].volumes[0].content[0]: 8192: the run ends there, beyond the volume's 4096 bytes",
    ),
    row(volumes([{ name: "a", capacityBytes: 4096, content: [{ offset: 0, length: 1, fill: 256 }] }]), RangeError, "content[0].fill: 256: it is not a whole number from 0 to 255"),
    row(volumes([{ name: "a", capacityBytes: 4096, content: [{ offset: 0, length: 1, fill: 1, seed: 2 }] }]), TypeError, 'content[0]: seed is only meaningful with fill "random"'),
    row({ domains: [{ name: "d", vcpus: 0, memoryBytes: 1, disks: [] }] }, RangeError, "domains[0].vcpus: 0: it is not a whole number from 1 to 4096"),
    row({ domains: [{ name: "d", vcpus: 1, memoryBytes: 1 }] }, TypeError, "domains[0].disks: is required"),
    row({ domains: [{ name: "d", vcpus: 1, memoryBytes: 1, disks: [], state: "blocked" }] }, TypeError, "domains[0].state"),
    row({ domains: [{ name: "d", uuid: "not-a-uuid", vcpus: 1, memoryBytes: 1, disks: [] }] }, TypeError, "domains[0].uuid"),
    row({ domains: [{ name: "d", vcpus: 1, memoryBytes: 1, disks: [{ target: "vda" }] }] }, TypeError, "domains[0].disks[0]: a disk needs exactly one of volume and path"),
    row({ domains: [{ name: "d", uuid: "11111111-1111-1111-1111-111111111111", vcpus: 1, memoryBytes: 1, disks: [] }] }, TypeError, "domains[0].uuid: \"11111111-1111-1111-1111-111111111111\": its digits are all the same"),
    row({ domains: [{ name: "d", vcpus: 1, memoryBytes: 1, disks: [{ target: "vda", path: "/a", readOnly: true }] }] }, TypeError, 'domains[0].disks[0]: unknown field "readOnly"'),
    row(
      { domains: [{ name: "d", vcpus: 1, memoryBytes: 1, disks: [{ target: "vda", path: "/a" }, { target: "vda", path: "/b" }] }] },
      TypeError,
      'domains[0].disks[1]: disk target "vda" is used twice',
    ),
    row({ domains: [{ name: "d", vcpus: 1, memoryBytes: 1, disks: [] }, { name: "d", vcpus: 1, memoryBytes: 1, disks: [] }] }, TypeError, "domains[1]"),
  ])("refuses the fixture: $message", ({ value, type, message }) => {
    const error = (() => {
      try {
        parseFixture(value);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toContain(message);
    expect((error as Error).message).toMatch(/^Invalid fixture: /);
  });
});

describe("test:///<path>.json", () => {
  it("loads pools, volumes with synthetic content, and domains in their states", async () => {
    await using conn = await connect(`test://${fixturePath("shutoff_domains.json")}`);
    expect((await conn.domains.list()).map((d) => d.name)).toEqual(["db1", "paused1", "crashed1"]);
    const states = await Promise.all((await conn.domains.list()).map(async (d) => (await d.info()).state));
    expect(states).toEqual(["shutoff", "paused", "crashed"]);
    const pool = await conn.pools.get("vms");
    expect(await pool.info()).toMatchObject({ state: "active", capacityBytes: MiB(1024), allocationBytes: MiB(17) });
    const golden = await pool.volumes.get("golden.img");
    const extents: Extent[] = [];
    for await (const extent of golden.extents()) extents.push(extent);
    expect(extents.filter((e) => e.data).map((e) => [e.offset, e.length])).toEqual([[0, MiB(16)], [MiB(32), MiB(1)]]);
    const job = await golden.download({ offset: MiB(32), length: 8 });
    const reader = job.readable.getReader();
    const first = await reader.read();
    expect(Array.from(first.value!)).toEqual([171, 171, 171, 171, 171, 171, 171, 171]);
    reader.releaseLock();
    await job.wait();
    const [vda] = await (await conn.domains.get("db1")).disks();
    expect(vda!.backingChain).toEqual([{ path: "/vms/golden.img", format: "raw" }]);
    const [crashedDisk] = await (await conn.domains.get("crashed1")).disks();
    expect(crashedDisk).toEqual({ target: "vda", path: "/var/lib/images/elsewhere.img", format: "raw", backingChain: [] });
  });

  it.each([
    { name: "bad_capacity.json", message: "pools[0].volumes[1].capacityBytes: expected number", cause: TypeError },
    { name: "bad_backing.json", message: 'pools[0].volumes[0].backing names volume "base.img"', cause: TypeError },
    { name: "not_json.json", message: "is not JSON", cause: SyntaxError },
  ])("$name fails to connect with a ConnectError that quotes the problem", async ({ name, message, cause }) => {
    const error = await connect(`test://${fixturePath(name)}`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toContain(message);
    expect((error as Error).message).toContain(name);
    expect((error as Error).cause).toBeInstanceOf(cause);
  });

  it("a missing file fails to connect with the file named", async () => {
    const path = fixturePath("does_not_exist.json");
    const error = await connect(`test://${path}`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toContain(`cannot read fixture file "${path}"`);
    expect((error as { cause: { code?: string } }).cause.code).toBe("ENOENT");
  });
});
