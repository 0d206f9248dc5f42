/**
 * The remote driver against a real libvirtd 9.0 serving libvirt's own `test` driver
 * (`test+unix:///default?socket=...`), with virsh on the same daemon as the referee: listing with
 * states, look-up, info, lifecycle with libvirt's events on `conn.events`, libvirt's errors mapped
 * onto virtkit's tree with their codes kept, and a connection lost under a pending call.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../../../mod.ts";
import type { Connection } from "../../../core/connection.ts";
import { ConnectError, NotFoundError, StateError } from "../../../core/errors.ts";
import { libvirtErrorOf } from "../../../drivers/remote/rpc/errors.ts";
import { type RunningLibvirtd, skipLibvirtd, startLibvirtd } from "../../_support/libvirtd.ts";

describe.skipIf(skipLibvirtd)("remote driver -> libvirtd test driver", () => {
  let daemon: RunningLibvirtd;
  let conn: Connection;
  beforeAll(async () => {
    daemon = await startLibvirtd({ driver: "test" });
    conn = await connect(daemon.uri("test"));
  }, 30_000);
  afterAll(async () => {
    await conn?.close().catch(() => {});
    await daemon?.stop();
  });

  it("is served by the remote driver, picked by the transport suffix", () => {
    expect(conn.driver).toBe("remote");
  });

  it("lists the domains with the states virsh reports", async () => {
    const domains = await conn.domains.list();
    const states = await Promise.all(domains.map(async (d) => [d.name, (await d.info()).state]));
    const virsh = daemon.virsh(["list", "--all"], { driver: "test" }).trim().split("\n").map((l) => l.trim().split(/\s+/));
    expect(states).toEqual(virsh.map(([, name, state]) => [name, state === "shut" ? "shutoff" : state]));
    expect(states).toContainEqual(["test", "running"]);
  });

  it("looks a domain up and reads its info as virsh dominfo does", async () => {
    const dom = await conn.domains.get("test");
    const info = await dom.info();
    const dominfo = Object.fromEntries(daemon.virsh(["dominfo", "test"], { driver: "test" }).trim().split("\n").map((l) => l.split(/:\s+/) as [string, string]));
    expect(info).toEqual({
      name: "test",
      uuid: dominfo["UUID"],
      state: "running",
      vcpus: Number(dominfo["CPU(s)"]),
      memoryBytes: Number(dominfo["Max memory"]!.split(" ")[0]) * 1024,
    });
    expect(dom.uuid).toBe(dominfo["UUID"]);
  });

  it("maps NO_DOMAIN onto NotFoundError and keeps libvirt's code, domain and message", async () => {
    const error = await conn.domains.get("ghost").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).objectName).toBe("ghost");
    expect(libvirtErrorOf(error)).toEqual({ code: 42, domain: 12, message: "Domain not found", level: 2 });
  });

  it("suspends, resumes, destroys and starts, with libvirt's events on conn.events", async () => {
    const dom = await conn.domains.get("test");
    const seen: Array<{ type: string; domain: string; seq: number }> = [];
    const off = conn.events.on("domain:*", (e) => void seen.push({ type: e.type, domain: (e as { domain: string }).domain, seq: e.seq }));
    const waitFor = async (type: string) => {
      const deadline = Date.now() + 5000;
      while (!seen.some((e) => e.type === type)) {
        if (Date.now() > deadline) throw new Error(`no ${type} event; saw ${JSON.stringify(seen)}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    try {
      await dom.suspend();
      expect((await dom.info()).state).toBe("paused");
      expect(daemon.virsh(["domstate", "test"], { driver: "test" }).trim()).toBe("paused");
      await waitFor("domain:suspended");
      await dom.resume();
      expect((await dom.info()).state).toBe("running");
      await waitFor("domain:resumed");
      await dom.destroy();
      expect((await dom.info()).state).toBe("shutoff");
      expect(daemon.virsh(["domstate", "test"], { driver: "test" }).trim()).toBe("shut off");
      await waitFor("domain:stopped");
      await dom.start();
      expect((await dom.info()).state).toBe("running");
      await waitFor("domain:started");
    } finally {
      off();
    }
    expect(seen.map((e) => e.type)).toEqual(["domain:suspended", "domain:resumed", "domain:stopped", "domain:started"]);
    expect(seen.every((e) => e.domain === "test")).toBe(true);
    expect(seen.map((e) => e.seq)).toEqual([...seen.map((e) => e.seq)].sort((a, b) => a - b));
  });

  it("explains libvirt's refusal to start a running domain as a StateError, and refuses to undefine it", async () => {
    const dom = await conn.domains.get("test");
    const error = await dom.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateError);
    expect((error as StateError).state).toBe("running");
    // libvirt's test driver says INTERNAL_ERROR "Domain 'test' is already running": kept as the cause.
    expect(libvirtErrorOf((error as Error).cause)).toMatchObject({ code: 1, message: expect.stringContaining("already running") });
    await expect(dom.resume()).rejects.toBeInstanceOf(StateError);
    await expect(dom.undefine()).rejects.toBeInstanceOf(StateError);
    expect(daemon.virsh(["domstate", "test"], { driver: "test" }).trim()).toBe("running");
  });

  it("shuts a domain down and waits until it is off", async () => {
    const dom = await conn.domains.get("test");
    await dom.shutdown({ timeoutMs: 5000 });
    expect((await dom.info()).state).toBe("shutoff");
    await dom.start();
  });

  it("rejects a call pending when the daemon goes away with ConnectError", async () => {
    const other = await startLibvirtd({ driver: "test" });
    const c = await connect(other.uri("test"));
    const dom = await c.domains.get("test");
    await other.stop();
    await expect(dom.info()).rejects.toBeInstanceOf(ConnectError);
    await c.close().catch(() => {});
  }, 30_000);
});
