import { describe, expect, it } from "vitest";
import { NotFoundError } from "../../core/errors.ts";
import { createDomainHandles } from "../../daemon/domain_handles.ts";
import { localContext, localSession } from "../../daemon/local_call.ts";
import { domainOf } from "../../daemon/remote/domain_refs.ts";
import { connect } from "../../mod.ts";

describe("createDomainHandles", () => {
  it("keeps one handle per domain and drops it when the domain is undefined or redefined", async () => {
    await using conn = await connect("test:///empty");
    const handles = createDomainHandles(conn);
    try {
      await conn.domains.define({ name: "web1", vcpus: 1, memoryBytes: 64 << 20, disks: [] });
      const first = await handles.get("web1");
      expect(await handles.get("web1")).toBe(first);
      expect(handles.size).toBe(1);
      await first.undefine();
      expect(handles.size).toBe(0);
      await expect(handles.get("web1")).rejects.toBeInstanceOf(NotFoundError);
      const again = await conn.domains.define({ name: "web1", vcpus: 1, memoryBytes: 64 << 20, disks: [] });
      const fresh = await handles.get("web1");
      expect(fresh).not.toBe(first);
      expect(fresh.uuid).toBe(again.uuid);
      expect(fresh.uuid).not.toBe(first.uuid);
    } finally {
      handles.close();
    }
  });

  it("keeps a domain's disk targets until it is redefined", async () => {
    await using conn = await connect("test:///default");
    const handles = createDomainHandles(conn);
    try {
      expect([...(await handles.diskTargets("test"))]).toEqual(["vda"]);
      await expect(handles.diskTargets("nope")).rejects.toBeInstanceOf(NotFoundError);
      const dom = await conn.domains.define({ name: "two", vcpus: 1, memoryBytes: 64 << 20, disks: [] });
      expect([...(await handles.diskTargets("two"))]).toEqual([]);
      await dom.undefine();
      await conn.domains.define({
        name: "two", vcpus: 1, memoryBytes: 64 << 20,
        disks: [{ target: "vdb", volume: { pool: "default-pool", name: "test.qcow2" } }],
      });
      expect([...(await handles.diskTargets("two"))]).toEqual(["vdb"]);
    } finally {
      handles.close();
    }
  });

  it("lets a call naming an undefined domain's old UUID fail as NO_DOMAIN, and the new one succeed", async () => {
    await using conn = await connect("test:///empty");
    const ctx = localContext(localSession(conn));
    const old = await conn.domains.define({ name: "vm", vcpus: 1, memoryBytes: 64 << 20, disks: [] });
    expect((await domainOf(ctx, { name: "vm", uuid: old.uuid, id: -1 })).info.uuid).toBe(old.uuid);
    await old.undefine();
    const redefined = await conn.domains.define({ name: "vm", vcpus: 1, memoryBytes: 64 << 20, disks: [] });
    await expect(domainOf(ctx, { name: "vm", uuid: old.uuid, id: -1 })).rejects.toBeInstanceOf(NotFoundError);
    expect((await domainOf(ctx, { name: "vm", uuid: redefined.uuid.toUpperCase(), id: -1 })).info.uuid).toBe(redefined.uuid);
  });
});
