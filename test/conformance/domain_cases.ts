/**
 * Conformance cases for a hypervisor driver: the connection, domain definition and the lifecycle state
 * rules (libvirt's: start a running domain, suspend a shut-off one, ... are errors), and domain events.
 *
 * @module
 */
import type { Connection } from "../../core/connection.ts";
import type { Domain, DomainConfig, DomainState } from "../../core/domain.ts";
import { ConflictError, NotFoundError, StateError } from "../../core/errors.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { assertAbortedWith, assertIncreasingSeq, record, scoped, uniqueName, withConnection } from "./_support.ts";
import type { ConformanceCase, ConformanceTarget } from "./types.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function domainConfig(target: ConformanceTarget, name: string): DomainConfig {
  if (!target.domainConfig) throw new TypeError("The conformance target declares domains but has no domainConfig()");
  const config = target.domainConfig(name);
  if (config.name !== name) throw new TypeError(`domainConfig("${name}") returned a domain named "${config.name}"`);
  return config;
}

/** Defines a scratch domain for `body`, then destroys (if needed) and undefines it. */
async function withDomain<T>(
  target: ConformanceTarget,
  conn: Connection,
  body: (domain: Domain, config: DomainConfig) => Promise<T>,
): Promise<T> {
  const config = domainConfig(target, uniqueName("dom"));
  const domain = await conn.domains.define(config);
  return scoped(() => body(domain, config), async () => {
    const names = (await conn.domains.list()).map((d) => d.name);
    if (!names.includes(config.name)) return;
    if ((await domain.info()).state !== "shutoff") await domain.destroy();
    await domain.undefine();
  });
}

async function expectState(domain: Domain, state: DomainState, after: string): Promise<void> {
  assertEquals((await domain.info()).state, state, `state of domain "${domain.name}" after ${after}`);
}

async function expectStateError(domain: Domain, verb: keyof Domain, state: DomainState): Promise<void> {
  const call = domain[verb] as () => Promise<unknown>;
  await assertRejects(() => call.call(domain), StateError, undefined, `${verb}() on ${state} domain "${domain.name}"`);
  await expectState(domain, state, `a refused ${verb}()`);
}

const connectionBasics: ConformanceCase = {
  name: "connection: uri and driver are set, close() is idempotent",
  async run(target) {
    const conn = await target.connect();
    try {
      assert(typeof conn.uri === "string" && conn.uri.length > 0, `conn.uri is a non-empty string (got ${conn.uri})`);
      assert(typeof conn.driver === "string" && conn.driver.length > 0, "conn.driver is a non-empty string");
      assert(typeof conn[Symbol.asyncDispose] === "function", "a connection supports `await using`");
    } finally {
      await conn.close();
    }
    await conn.close();
  },
};

const defineGetListUndefine: ConformanceCase = {
  name: "domains: define() makes a shut-off domain that get() and list() find; undefine() removes it",
  requires: ["domains"],
  run: (target) =>
    withConnection(target, async (conn) => {
      const config = domainConfig(target, uniqueName("dom"));
      const domain = await conn.domains.define(config);
      let defined = true;
      await scoped(async () => {
        assertEquals(domain.name, config.name, "define() returns the domain");
        assert(UUID.test(domain.uuid), `domain.uuid is an RFC 4122 UUID (got "${domain.uuid}")`);
        const info = await domain.info();
        assertEquals(
          { name: info.name, uuid: info.uuid, state: info.state, vcpus: info.vcpus, memoryBytes: info.memoryBytes },
          { name: config.name, uuid: domain.uuid, state: "shutoff", vcpus: config.vcpus, memoryBytes: config.memoryBytes },
          "info() of a new domain",
        );
        const stored = await domain.config();
        assertEquals(
          [stored.name, stored.vcpus, stored.memoryBytes, stored.uuid],
          [config.name, config.vcpus, config.memoryBytes, domain.uuid],
          "config() returns the definition, with its uuid",
        );
        assertEquals((await conn.domains.get(config.name)).uuid, domain.uuid, "get() finds the domain");
        assert((await conn.domains.list()).some((d) => d.name === config.name), "list() includes the new domain");
        await domain.undefine();
        defined = false;
        const error = await assertRejects(() => conn.domains.get(config.name), NotFoundError, undefined, "get() after undefine()");
        assertEquals(error.objectType, "domain", "NotFoundError.objectType");
        assert(!(await conn.domains.list()).some((d) => d.name === config.name), "list() no longer has it");
      }, async () => {
        if (defined) await domain.undefine();
      });
    }),
};

const getUnknown: ConformanceCase = {
  name: 'domains: get() of an unknown name throws NotFoundError with objectType "domain"',
  requires: ["domains"],
  run: (target) =>
    withConnection(target, async (conn) => {
      const name = uniqueName("missing");
      const error = await assertRejects(() => conn.domains.get(name), NotFoundError, name, `get("${name}")`);
      assertEquals([error.objectType, error.objectName, error.code], ["domain", name, "not-found"], "NotFoundError fields");
    }),
};

const defineDuplicate: ConformanceCase = {
  name: "domains: define() of a taken name throws ConflictError and keeps the first",
  requires: ["domains"],
  run: (target) =>
    withConnection(target, (conn) =>
      withDomain(target, conn, async (domain, config) => {
        await assertRejects(() => conn.domains.define({ ...config, uuid: undefined }), ConflictError, undefined, "a second define()");
        assertEquals((await conn.domains.get(config.name)).uuid, domain.uuid, "the first domain is untouched");
        assertEquals((await conn.domains.list()).filter((d) => d.name === config.name).length, 1, "domains named so");
      })),
};

const invalidNames: ConformanceCase = {
  name: "domains: define() rejects invalid names with TypeError",
  requires: ["domains"],
  run: (target) =>
    withConnection(target, async (conn) => {
      const before = (await conn.domains.list()).length;
      const base = domainConfig(target, uniqueName("dom"));
      for (const name of ["", ".", "..", "a/b", "nul\0byte", "x".repeat(65)]) {
        await assertRejects(() => conn.domains.define({ ...base, name }), TypeError, undefined, `define() named ${JSON.stringify(name)}`);
      }
      await assertRejects(() => conn.domains.define({ ...base, name: 42 as unknown as string }), TypeError, undefined, "define() named 42");
      assertEquals((await conn.domains.list()).length, before, "no domain was defined by the refused calls");
    }),
};

const stateRules: ConformanceCase = {
  name: "domains: start, suspend, resume and destroy follow the state rules",
  requires: ["domains"],
  run: (target) =>
    withConnection(target, (conn) =>
      withDomain(target, conn, async (domain) => {
        await expectStateError(domain, "suspend", "shutoff");
        await expectStateError(domain, "resume", "shutoff");
        await expectStateError(domain, "destroy", "shutoff");
        await expectStateError(domain, "shutdown", "shutoff");
        await domain.start();
        await expectState(domain, "running", "start()");
        await expectStateError(domain, "start", "running");
        await expectStateError(domain, "resume", "running");
        await domain.suspend();
        await expectState(domain, "paused", "suspend()");
        await expectStateError(domain, "suspend", "paused");
        await domain.resume();
        await expectState(domain, "running", "resume()");
        await domain.destroy();
        await expectState(domain, "shutoff", "destroy()");
        await domain.start();
        await expectState(domain, "running", "a second start()");
        await domain.destroy();
      })),
};

const undefineRunning: ConformanceCase = {
  name: "domains: undefine() of a running domain throws StateError and keeps it",
  requires: ["domains"],
  run: (target) =>
    withConnection(target, (conn) =>
      withDomain(target, conn, async (domain) => {
        await domain.start();
        await expectStateError(domain, "undefine", "running");
        assertEquals((await conn.domains.get(domain.name)).uuid, domain.uuid, "the domain is still defined");
      })),
};

const domainEvents: ConformanceCase = {
  name: "domains: the lifecycle emits domain events naming the domain, with increasing seq",
  requires: ["domains"],
  run: (target) =>
    withConnection(target, async (conn) => {
      const recording = record(conn.events, "domain:*");
      const config = domainConfig(target, uniqueName("dom"));
      const domain = await conn.domains.define(config);
      await scoped(async () => {
        await domain.start();
        await domain.suspend();
        await domain.resume();
        await domain.destroy();
      }, () => domain.undefine());
      recording.stop();
      const mine = recording.events.filter((e) => e.domain === config.name);
      assertEquals(
        mine.map((e) => e.type),
        ["domain:defined", "domain:started", "domain:suspended", "domain:resumed", "domain:stopped", "domain:undefined"],
        `event types for domain "${config.name}"`,
      );
      assertIncreasingSeq(mine, "domain events");
    }),
};

const abortedSignal: ConformanceCase = {
  name: "domains: a call with an aborted signal rejects with the signal's own reason and changes nothing",
  requires: ["domains"],
  run: (target) =>
    withConnection(target, (conn) =>
      withDomain(target, conn, async (domain) => {
        const reason = new Error("the conformance kit aborted this call");
        const signal = AbortSignal.abort(reason);
        await assertAbortedWith(() => conn.domains.list({ signal }), reason, "domains.list()");
        await assertAbortedWith(() => conn.domains.get(domain.name, { signal }), reason, "domains.get()");
        const config = domainConfig(target, uniqueName("dom"));
        await assertAbortedWith(() => conn.domains.define(config, { signal }), reason, "domains.define()");
        await assertAbortedWith(() => domain.start({ signal }), reason, "domain.start()");
        await expectState(domain, "shutoff", "an aborted start()");
        assert(!(await conn.domains.list()).some((d) => d.name === config.name), "an aborted define() defines nothing");
      })),
};

/**
 * Cases for a hypervisor driver's domains (capability `domains`), plus connection basics every target runs.
 *
 * @example Run them with any runner
 * ```ts
 * import { hypervisorCases } from "virtkit/testing";
 * if (!hypervisorCases.some((c) => c.name.startsWith("domains:"))) throw new Error("unexpected");
 * ```
 */
export const hypervisorCases: readonly ConformanceCase[] = Object.freeze([
  connectionBasics,
  defineGetListUndefine,
  getUnknown,
  defineDuplicate,
  invalidNames,
  stateRules,
  undefineRunning,
  domainEvents,
  abortedSignal,
]);
