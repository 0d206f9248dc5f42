/**
 * Every way a config enters goes through the same schemas: define(), pool definitions (built-in types and
 * a plugin backend's own configSchema, declared as a plain TS interface), volume specs; messages name the
 * path and the rule; unknown fields are refused.
 */
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { connect, createDefaultRegistry, defineStorageBackend, GiB, MiB, NotFoundError } from "../../../mod.ts";
import { checkDomainConfig, DEFAULT_MACHINE } from "../../../core/config/domain_config.ts";
import { checkPoolConfig } from "../../../core/config/pool_config.ts";

/** A plugin's pool config, declared the way plugin authors write them: an interface, no index signature. */
interface ScratchPoolConfig {
  name: string;
  type: "scratch";
  sizeBytes: number;
}

const ScratchPoolConfigSchema = v.strictObject({
  name: v.string(),
  type: v.literal("scratch"),
  sizeBytes: v.pipe(v.number(), v.minValue(1, "a scratch pool needs some bytes")),
});

describe("config schemas", () => {
  it("define() applies the documented defaults: a generated uuid and machine q35", async () => {
    await using conn = await connect("test:///empty");
    const dom = await conn.domains.define({ name: "web1", vcpus: 2, memoryBytes: MiB(64), disks: [] });
    expect(await dom.config()).toEqual({ name: "web1", uuid: dom.uuid, vcpus: 2, memoryBytes: MiB(64), machine: DEFAULT_MACHINE, disks: [] });
    expect(DEFAULT_MACHINE).toBe("q35");
  });

  it("a typo is refused, not ignored, with its path", async () => {
    await using conn = await connect("test:///empty");
    const config = { name: "web1", vcpus: 1, memoryBytes: MiB(64), disks: [{ target: "vda", path: "/a", readOnly: true }] };
    await expect(conn.domains.define(config as never)).rejects.toThrow('Invalid domain config "web1": disks[0]: unknown field "readOnly"');
    expect(() => checkDomainConfig({ ...config, disks: [], vCPUs: 2 } as never)).toThrow(/unknown field "vCPUs"/);
  });

  it("every issue is reported with its path and rule, the first deciding TypeError or RangeError", () => {
    const bad = { name: "web1", vcpus: 0, memoryBytes: 1.5, machine: "q 35", disks: [{ target: "vda" }, { target: "vdb", path: "/b", format: "Q" }] };
    let error: unknown;
    try {
      checkDomainConfig(bad);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toBe(
      'Invalid domain config "web1": vcpus: 0: it is not a whole number from 1 to 4096; ' +
        "memoryBytes: 1.5: it is not a whole number of bytes from 1 to 9007199254740991; " +
        'machine: "q 35": it is not a machine type such as "q35"; ' +
        "disks[0]: a disk needs exactly one of volume and path; " +
        'disks[1].format: "Q": it is not an image format such as "qcow2"',
    );
  });

  it("built-in pool types are checked by their schema, on every connection", async () => {
    await using conn = await connect("test:///empty");
    await expect(conn.pools.define({ name: "p", type: "dir", path: "images" })).rejects.toThrow('Invalid pool config "p": path: "images": it is not an absolute path');
    await expect(conn.pools.define({ name: "p", type: "memory", capacityBytes: -1 })).rejects.toThrow(RangeError);
    // No iscsi backend on this connection: its schema is checked wherever the config enters (XML, define).
    expect(() => checkPoolConfig({ name: "p", type: "iscsi", host: "h", target: "iqn.x", port: 0 })).toThrow(/port: 0: it is not a whole number from 1 to 65535/);
    await expect(conn.pools.define({ name: "p/q", type: "memory" })).rejects.toThrow(/name: "p\/q": it contains a path separator/);
    await expect(conn.pools.define({ name: "p", type: "nosuch" })).rejects.toBeInstanceOf(NotFoundError);
  });

  it("a plugin backend's configSchema checks its pools (config declared as an interface)", async () => {
    const registry = createDefaultRegistry();
    const seen: ScratchPoolConfig[] = [];
    registry.register(defineStorageBackend<ScratchPoolConfig>({
      name: "scratch",
      configSchema: ScratchPoolConfigSchema,
      validate(config) {
        if (config.sizeBytes > GiB(1)) throw new RangeError(`Invalid pool config "${config.name}": scratch pools hold at most 1 GiB`);
      },
      open: (config) => {
        seen.push(config);
        return Promise.reject(new Error("not opened in this test"));
      },
    }));
    await using conn = await connect("test:///empty", { registry });
    await expect(conn.pools.define({ name: "s", type: "scratch", sizeBytes: 0 })).rejects.toThrow('Invalid pool config "s": sizeBytes: 0: a scratch pool needs some bytes');
    await expect(conn.pools.define({ name: "s", type: "scratch", sizeBytes: 1, size: 2 })).rejects.toThrow(/unknown field "size"/);
    await expect(conn.pools.define({ name: "s", type: "scratch", sizeBytes: GiB(2) })).rejects.toThrow(/at most 1 GiB/);
    const pool = await conn.pools.define({ name: "s", type: "scratch", sizeBytes: MiB(1) });
    expect(await pool.config()).toEqual({ name: "s", type: "scratch", sizeBytes: MiB(1) });
    expect(() => defineStorageBackend({ name: "bad", configSchema: { parse() {} } as never, open: () => Promise.reject(new Error("x")) })).toThrow(/configSchema must be a valibot schema/);
  });

  it("volume specs: defaults and rules from the schema", async () => {
    await using conn = await connect("test:///default");
    const pool = await conn.pools.get("default-pool");
    const volume = await pool.volumes.create({ name: "new.img", capacityBytes: MiB(1) });
    expect((await volume.info()).format).toBe("raw");
    await expect(pool.volumes.create({ name: "b.img", capacityBytes: 0 })).rejects.toThrow(/capacityBytes: 0: it is not a whole number of bytes from 1/);
    await expect(pool.volumes.create({ name: "c.img", capacityBytes: MiB(1), backing: { path: "/default-pool/new.img", format: "raw" } })).rejects.toThrow(
      /only a qcow2 volume can have a backing image/,
    );
    await expect(pool.volumes.create({ name: "d.img", capacityBytes: MiB(1), format: "vmdk" as "raw" })).rejects.toThrow(/format: is "vmdk", expected "raw" or "qcow2"/);
  });
});
