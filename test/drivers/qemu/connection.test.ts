/**
 * The qemu driver's domains against real QEMU: definitions on disk, the lifecycle with its events,
 * shutdown of a guest without an OS, a crash, start failures and the missing-binary error.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { afterEach, describe, expect, it } from "vitest";
import { ConnectError, NotFoundError, StateError, VirtError } from "../../../core/errors.ts";
import { domainConfig, killAll, MiB, Scratch, skipReal, until } from "./_support.ts";

const scratches: Scratch[] = [];
afterEach(async () => {
  for (const s of scratches.splice(0)) await s.cleanup();
});
function scratch(): Scratch {
  const s = new Scratch();
  scratches.push(s);
  return s;
}

describe("qemu driver: connection and definitions", () => {
  it.skipIf(skipReal)("persists definitions as JSON files and a new connection lists them in order", async () => {
    const s = scratch();
    const conn = await s.connect();
    await conn.domains.define(domainConfig("b"));
    const a = await conn.domains.define({ ...domainConfig("a"), memoryBytes: 128 * MiB });
    await conn.close();
    expect(readdirSync(join(s.stateDir, "domains")).sort()).toEqual(["a.json", "b.json"]);
    const again = await s.connect();
    expect((await again.domains.list()).map((d) => d.name)).toEqual(["b", "a"]);
    const info = await (await again.domains.get("a")).info();
    expect(info).toEqual({ name: "a", uuid: a.uuid, state: "shutoff", vcpus: 1, memoryBytes: 128 * MiB });
    await (await again.domains.get("b")).undefine();
    expect(readdirSync(join(s.stateDir, "domains"))).toEqual(["a.json"]);
    await expect(again.domains.get("b")).rejects.toBeInstanceOf(NotFoundError);
  });

  it.skipIf(skipReal)("takes stateDir from the URI and refuses other URIs", async () => {
    const s = scratch();
    const conn = await s.registry.connect(`qemu:///session?stateDir=${encodeURIComponent(s.stateDir)}`);
    await conn.domains.define(domainConfig("x"));
    await conn.close();
    expect(readdirSync(join(s.stateDir, "domains"))).toEqual(["x.json"]);
    for (const uri of ["qemu:///system", "qemu://host/session", "qemu:///session?foo=1", "qemu:///other"]) {
      await expect(s.registry.connect(uri, { stateDir: s.stateDir })).rejects.toBeInstanceOf(ConnectError);
    }
  });

  it.skipIf(skipReal)("refuses malformed disks and duplicate names", async () => {
    const conn = await scratch().connect();
    await expect(conn.domains.define(domainConfig("d", [{ target: "vda" }]))).rejects.toBeInstanceOf(TypeError);
    await expect(conn.domains.define(domainConfig("d", [{ target: "vda", path: "/a" }, { target: "vda", path: "/b" }]))).rejects
      .toBeInstanceOf(TypeError);
    await conn.domains.define(domainConfig("d"));
    await expect(conn.domains.define(domainConfig("d"))).rejects.toThrow(/exists/);
  });
});

describe("qemu driver: lifecycle on real QEMU", () => {
  it.skipIf(skipReal)("start, suspend, resume and destroy follow QEMU and emit their events before resolving", async () => {
    const s = scratch();
    const conn = await s.connect();
    const events: string[] = [];
    conn.events.on("domain:*", (e) => events.push(`${e.type}:${e.reason}`));
    const dom = await conn.domains.define(domainConfig("life"));
    await dom.start();
    expect(events.at(-1)).toBe("domain:started:booted");
    expect((await dom.info()).state).toBe("running");
    const run = JSON.parse(readFileSync(join(s.stateDir, "run", "life.json"), "utf8")) as { pid: number };
    expect(readFileSync(`/proc/${run.pid}/cmdline`, "utf8")).toContain("-nodefaults");
    await expect(dom.start()).rejects.toBeInstanceOf(StateError);
    await expect(dom.undefine()).rejects.toBeInstanceOf(StateError);
    await dom.suspend();
    expect(events.at(-1)).toBe("domain:suspended:paused");
    expect((await dom.info()).state).toBe("paused");
    await expect(dom.suspend()).rejects.toThrow(/already paused/);
    await dom.resume();
    expect(events.at(-1)).toBe("domain:resumed:unpaused");
    await expect(dom.resume()).rejects.toThrow(/not paused/);
    await dom.destroy();
    expect(events.at(-1)).toBe("domain:stopped:destroyed");
    expect((await dom.info()).state).toBe("shutoff");
    expect(() => process.kill(run.pid, 0)).toThrow();
    await expect(dom.destroy()).rejects.toBeInstanceOf(StateError);
    expect(events).toEqual([
      "domain:defined:added",
      "domain:started:booted",
      "domain:suspended:paused",
      "domain:resumed:unpaused",
      "domain:stopped:destroyed",
    ]);
  });

  it.skipIf(skipReal)("info() follows a pause and a resume QEMU makes on its own (HMP stop/cont): its STOP/RESUME events come before the reply", async () => {
    const s = scratch();
    const { conn, driver } = await s.connectWithDriver();
    const events: string[] = [];
    conn.events.on("domain:*", (e) => events.push(`${e.type}:${e.reason}`));
    const dom = await conn.domains.define(domainConfig("own"));
    await dom.start();
    // Not through virtkit's verbs: only QEMU's events can tell virtkit, and they are in before the reply.
    await driver.humanMonitorCommand("own", "stop");
    expect((await dom.info()).state).toBe("paused");
    expect(events.at(-1)).toBe("domain:suspended:paused");
    await driver.humanMonitorCommand("own", "cont");
    expect((await dom.info()).state).toBe("running");
    expect(events.at(-1)).toBe("domain:resumed:unpaused");
    await dom.destroy();
    expect((await dom.info()).state).toBe("shutoff");
  });

  it.skipIf(skipReal)("a real machine type gets its vCPUs and a virtio-blk-pci device per disk", async () => {
    const s = scratch();
    const { overlay } = s.images(8);
    const conn = await s.connect();
    const dom = await conn.domains.define({ ...domainConfig("pc", [{ target: "vda", path: overlay }]), vcpus: 2, machine: "pc" });
    await dom.start();
    const { pid } = JSON.parse(readFileSync(join(s.stateDir, "run", "pc.json"), "utf8")) as { pid: number };
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    expect(argv.slice(argv.indexOf("-machine"), argv.indexOf("-machine") + 2)).toEqual(["-machine", "pc"]);
    expect(argv.slice(argv.indexOf("-smp"), argv.indexOf("-smp") + 2)).toEqual(["-smp", "2"]);
    expect(argv).toContain("virtio-blk-pci,drive=vda-0,id=vda");
    expect(await dom.info()).toMatchObject({ state: "running", vcpus: 2 });
    await dom.destroy();
  });

  it.skipIf(skipReal)("shutdown() of a guest without an OS times out with a StateError and leaves it running", async () => {
    const conn = await scratch().connect();
    const dom = await conn.domains.define(domainConfig("acpi"));
    await expect(dom.shutdown()).rejects.toBeInstanceOf(StateError);
    await dom.start();
    const error = await dom.shutdown({ timeoutMs: 200 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateError);
    expect((error as Error).message).toMatch(/"acpi".*did not power off within 200 ms/);
    expect((await dom.info()).state).toBe("running");
    await dom.destroy();
  });

  it.skipIf(skipReal)("a QEMU killed from outside makes the domain crashed, with domain:crashed; it starts again", async () => {
    const s = scratch();
    const conn = await s.connect();
    const dom = await conn.domains.define(domainConfig("crash"));
    await dom.start();
    const { pid } = JSON.parse(readFileSync(join(s.stateDir, "run", "crash.json"), "utf8")) as { pid: number };
    const crashed = new Promise((resolve) => conn.events.once("domain:crashed", resolve));
    process.kill(pid, "SIGKILL");
    await crashed;
    expect((await dom.info()).state).toBe("crashed");
    await dom.start();
    expect((await dom.info()).state).toBe("running");
    await dom.destroy();
    await dom.start();
    await dom.destroy();
    await dom.undefine();
  });

  it.skipIf(skipReal)("a domain whose disk does not exist fails to start and stays shut off", async () => {
    const s = scratch();
    const conn = await s.connect();
    const dom = await conn.domains.define(domainConfig("nodisk", [{ target: "vda", path: join(s.dir, "missing.qcow2") }]));
    await expect(dom.start()).rejects.toThrow(/missing\.qcow2/);
    expect((await dom.info()).state).toBe("shutoff");
    expect(readdirSync(join(s.stateDir, "run")).filter((f) => f.endsWith(".json"))).toEqual([]);
  });

  it.skipIf(skipReal)("without qemu-system-x86_64 on PATH, start() says what to install", async () => {
    const s = scratch();
    const conn = await s.connect();
    const dom = await conn.domains.define(domainConfig("nobin"));
    const path = process.env.PATH;
    process.env.PATH = "/nonexistent";
    let error: unknown;
    try {
      error = await dom.start().catch((e: unknown) => e);
    } finally {
      process.env.PATH = path;
    }
    expect(error).toBeInstanceOf(VirtError);
    expect((error as Error).message).toContain("apt-get install qemu-system-x86");
    expect((await dom.info()).state).toBe("shutoff");
  });

  it.skipIf(skipReal)("a state directory too deep for a unix socket path still starts (socket in the temp directory)", async () => {
    const s = scratch();
    const deep = join(s.dir, "d".repeat(60), "e".repeat(60));
    const conn = await s.registry.connect("qemu:///session", { stateDir: deep });
    try {
      const dom = await conn.domains.define(domainConfig("deep"));
      await dom.start();
      const run = JSON.parse(readFileSync(join(deep, "run", "deep.json"), "utf8")) as { pid: number; socket: string };
      expect(run.socket.length).toBeLessThan(100);
      await dom.destroy();
      expect(existsSync(run.socket)).toBe(false);
    } finally {
      killAll(deep);
      await conn.close();
    }
  });

  it.skipIf(skipReal)("while another connection holds the QMP socket, a second one does not adopt the domain nor forget it", async () => {
    const s = scratch();
    const first = await s.connect();
    await (await first.domains.define(domainConfig("held"))).start();
    const second = await s.connect();
    expect((await (await second.domains.get("held")).info()).state).toBe("shutoff");
    await second.close();
    await first.close();
    const third = await s.connect();
    const dom = await third.domains.get("held");
    expect((await dom.info()).state).toBe("running");
    await dom.destroy();
  }, 20_000);

  it.skipIf(skipReal)("a new connection finds a running domain again; close() leaves QEMU running", async () => {
    const s = scratch();
    const first = await s.connect();
    const dom = await first.domains.define(domainConfig("keep"));
    await dom.start();
    await dom.suspend();
    await first.close();
    const second = await s.connect();
    const again = await second.domains.get("keep");
    expect((await again.info()).state).toBe("paused");
    const events: string[] = [];
    second.events.on("domain:*", (e) => events.push(e.type));
    await again.resume();
    await again.destroy();
    expect(events).toEqual(["domain:resumed", "domain:stopped"]);
  });

  it.skipIf(skipReal)("a re-attached QEMU that is killed is reported crashed by the new connection", async () => {
    const s = scratch();
    const first = await s.connect();
    await (await first.domains.define(domainConfig("again"))).start();
    await first.close();
    const second = await s.connect();
    const { pid } = JSON.parse(readFileSync(join(s.stateDir, "run", "again.json"), "utf8")) as { pid: number };
    const crashed = new Promise((resolve) => second.events.once("domain:crashed", resolve));
    process.kill(pid, "SIGKILL");
    await crashed;
    expect((await (await second.domains.get("again")).info()).state).toBe("crashed");
    await until(() => !existsSync(join(s.stateDir, "run", "again.json")), "the run record to go");
  });
});
