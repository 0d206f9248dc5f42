import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConflictError, connect, createVirtualClock, MiB, NotFoundError, StateError } from "../../../mod.ts";
import type { Connection } from "../../../core/connection.ts";
import type { Domain, DomainState } from "../../../core/domain.ts";
import type { CoreEvent } from "../../../core/events.ts";

type Verb = "start" | "shutdown" | "destroy" | "suspend" | "resume" | "undefine";

/** Every verb from every state: the state it leads to with its event and reason, or the refusal's text. */
const RULES: Record<DomainState, Record<Verb, { to: DomainState | "undefined"; event: string; reason: string } | RegExp>> = {
  running: {
    start: /^Cannot start domain "d": it is already running$/,
    shutdown: { to: "shutoff", event: "domain:stopped", reason: "shutdown" },
    destroy: { to: "shutoff", event: "domain:stopped", reason: "destroyed" },
    suspend: { to: "paused", event: "domain:suspended", reason: "paused" },
    resume: /^Cannot resume domain "d": it is not paused$/,
    undefine: /^Cannot undefine domain "d": it is running$/,
  },
  paused: {
    start: /^Cannot start domain "d": it is already running$/,
    shutdown: { to: "shutoff", event: "domain:stopped", reason: "shutdown" },
    destroy: { to: "shutoff", event: "domain:stopped", reason: "destroyed" },
    suspend: /^Cannot suspend domain "d": it is already paused$/,
    resume: { to: "running", event: "domain:resumed", reason: "unpaused" },
    undefine: /^Cannot undefine domain "d": it is running$/,
  },
  shutoff: {
    start: { to: "running", event: "domain:started", reason: "booted" },
    shutdown: /^Cannot shut down domain "d": it is not running$/,
    destroy: /^Cannot destroy domain "d": it is not running$/,
    suspend: /^Cannot suspend domain "d": it is not running$/,
    resume: /^Cannot resume domain "d": it is not paused$/,
    undefine: { to: "undefined", event: "domain:undefined", reason: "removed" },
  },
  crashed: {
    start: { to: "running", event: "domain:started", reason: "booted" },
    shutdown: /^Cannot shut down domain "d": it is not running$/,
    destroy: { to: "shutoff", event: "domain:stopped", reason: "destroyed" },
    suspend: /^Cannot suspend domain "d": it is not running$/,
    resume: /^Cannot resume domain "d": it is not paused$/,
    undefine: /^Cannot undefine domain "d": it is crashed$/,
  },
};

const CASES = (Object.keys(RULES) as DomainState[]).flatMap((state) =>
  (Object.keys(RULES[state]) as Verb[]).map((verb) => ({ state, verb, rule: RULES[state][verb] }))
);

describe("test driver domains: state rules", () => {
  let conn: Connection;
  let events: CoreEvent[];
  beforeEach(async () => {
    conn = await connect("test:///empty", { clock: createVirtualClock() });
    events = [];
    conn.events.on("domain:*", (event) => void events.push(event));
  });
  afterEach(() => conn.close());

  it.each(CASES)("$state domain: $verb()", async ({ state, verb, rule }) => {
    await conn.testing!.load({ domains: [{ name: "d", vcpus: 1, memoryBytes: MiB(64), state, disks: [] }] });
    const dom = await conn.domains.get("d");
    const before = events.length;
    if (rule instanceof RegExp) {
      const error = await dom[verb]().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StateError);
      expect((error as Error).message).toMatch(rule);
      expect((error as StateError).state).toBe(state);
      expect((await dom.info()).state).toBe(state);
      expect(events.length).toBe(before);
      return;
    }
    await dom[verb]();
    if (rule.to === "undefined") await expect(conn.domains.get("d")).rejects.toBeInstanceOf(NotFoundError);
    else expect((await dom.info()).state).toBe(rule.to);
    expect(events.slice(before).map((e) => [e.type, "domain" in e && e.domain, "reason" in e && e.reason])).toEqual([
      [rule.event, "d", rule.reason],
    ]);
  });

  it("a full lifecycle emits defined, started, suspended, resumed, stopped, undefined with increasing seq", async () => {
    const dom = await conn.domains.define({ name: "web1", vcpus: 2, memoryBytes: MiB(256), disks: [] });
    expect((await dom.info()).state).toBe("shutoff");
    await dom.start();
    await dom.suspend();
    await dom.resume();
    await dom.shutdown();
    await dom.undefine();
    expect(events.map((e) => e.type)).toEqual([
      "domain:defined",
      "domain:started",
      "domain:suspended",
      "domain:resumed",
      "domain:stopped",
      "domain:undefined",
    ]);
    expect(events.every((e, i) => i === 0 || e.seq > events[i - 1]!.seq)).toBe(true);
    expect(events[0]).toMatchObject({ domain: "web1", reason: "added" });
  });
});

describe("test driver domains: definitions", () => {
  let conn: Connection;
  beforeEach(async () => {
    conn = await connect("test:///default");
  });
  afterEach(() => conn.close());

  it("define() of a taken name throws ConflictError and keeps the first", async () => {
    const error = await conn.domains.define({ name: "test", vcpus: 1, memoryBytes: MiB(64), disks: [] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as Error).message).toBe('Cannot define domain "test": a domain with that name exists');
    expect((await (await conn.domains.get("test")).info()).vcpus).toBe(2);
  });

  it("define() with another domain's UUID throws ConflictError naming that domain", async () => {
    const first = await conn.domains.define({ name: "a", vcpus: 1, memoryBytes: MiB(64), disks: [] });
    const error = await conn.domains.define({ name: "b", uuid: first.uuid.toUpperCase(), vcpus: 1, memoryBytes: MiB(64), disks: [] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as Error).message).toBe(`Cannot define domain "b": UUID ${first.uuid} belongs to domain "a"`);
    expect((await conn.domains.list()).map((d) => d.name)).toEqual(["test", "a"]);
  });

  it.each([
    { what: "no vCPUs", config: { name: "x", vcpus: 0, memoryBytes: MiB(64), disks: [] }, type: RangeError, message: /vcpus/ },
    { what: "negative memory", config: { name: "x", vcpus: 1, memoryBytes: -1, disks: [] }, type: RangeError, message: /memoryBytes/ },
    { what: "a slash in the name", config: { name: "x/y", vcpus: 1, memoryBytes: MiB(64), disks: [] }, type: TypeError, message: /path separator/ },
    {
      what: "a disk without volume or path",
      config: { name: "x", vcpus: 1, memoryBytes: MiB(64), disks: [{ target: "vda" }] },
      type: TypeError,
      message: /exactly one of volume and path/,
    },
    {
      what: "a repeated disk target",
      config: { name: "x", vcpus: 1, memoryBytes: MiB(64), disks: [{ target: "vda", path: "/a" }, { target: "vda", path: "/b" }] },
      type: TypeError,
      message: /used twice/,
    },
  ])("define() with $what is refused", async ({ config, type, message }) => {
    const error = await conn.domains.define(config as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toMatch(message);
    expect((await conn.domains.list()).map((d) => d.name)).toEqual(["test"]);
  });

  it("config() returns a copy: changing it changes nothing", async () => {
    const dom = await conn.domains.get("test");
    const config = await dom.config();
    config.vcpus = 64;
    config.disks.length = 0;
    expect((await dom.config()).vcpus).toBe(2);
    expect((await dom.config()).disks).toHaveLength(1);
  });

  it("a disk whose volume does not exist is accepted by define(), and start() fails naming the volume", async () => {
    const dom = await conn.domains.define({
      name: "orphan",
      vcpus: 1,
      memoryBytes: MiB(64),
      disks: [{ target: "vda", volume: { pool: "default-pool", name: "missing.qcow2" } }],
    });
    const error = await dom.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ objectType: "volume", objectName: "missing.qcow2" });
    expect((await dom.info()).state).toBe("shutoff");
    await expect(dom.disks()).rejects.toBeInstanceOf(NotFoundError);
  });

  it("start() of a domain on a pool that does not exist fails with NotFoundError naming the pool", async () => {
    const dom = await conn.domains.define({
      name: "lost",
      vcpus: 1,
      memoryBytes: MiB(64),
      disks: [{ target: "vda", volume: { pool: "nowhere", name: "a.img" } }],
    });
    await expect(dom.start()).rejects.toMatchObject({ objectType: "pool", objectName: "nowhere" });
  });

  it("disks() resolves a disk given by a volume path, and reports a host path as it is", async () => {
    const dom: Domain = await conn.domains.define({
      name: "paths",
      vcpus: 1,
      memoryBytes: MiB(64),
      disks: [
        { target: "vda", path: "/default-pool/test.qcow2" },
        { target: "vdb", path: "/srv/images/other.iso", format: "raw", readonly: true },
      ],
    });
    const [vda, vdb] = await dom.disks();
    expect(vda).toEqual({
      target: "vda",
      path: "/default-pool/test.qcow2",
      format: "qcow2",
      backingChain: [{ path: "/default-pool/template.img", format: "raw" }],
      volume: { pool: "default-pool", name: "test.qcow2" },
    });
    expect(vdb).toEqual({ target: "vdb", path: "/srv/images/other.iso", format: "raw", backingChain: [] });
    await dom.start();
    expect((await dom.info()).state).toBe("running");
  });

  it("an unknown domain is a NotFoundError for every verb", async () => {
    const ghost = await conn.domains.define({ name: "ghost", vcpus: 1, memoryBytes: MiB(64), disks: [] });
    await ghost.undefine();
    for (const verb of ["info", "config", "start", "shutdown", "destroy", "suspend", "resume", "undefine", "disks"] as const) {
      await expect(ghost[verb](), verb).rejects.toMatchObject({ objectType: "domain", objectName: "ghost" });
    }
  });
});
