/**
 * An `iscsi` pool whose CHAP secret is named (`auth.secret`, as pool XML has it) on a local connection:
 * virtkit has no secret store, so it is defined and listed, and logging in is an `UnsupportedError`
 * saying so, unless the definition also gives the password. Against a private tgtd with a CHAP account.
 */
import fsp from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Connection } from "../../../core/connection.ts";
import { UnsupportedError } from "../../../core/errors.ts";
import { connect } from "../../../mod.ts";
import { downloadBytes } from "../../conformance/_support.ts";
import { skipIscsi, Tgtd } from "../../_support/tgtd.ts";

const MiB = 1 << 20;
const CHAP = { username: "vk-named", password: "vk-named-secret-1" };
const target = { connect: () => Promise.reject(new Error("unused")) };

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(() => undefined, (e: unknown) => e);
}

describe("iscsi pool with only a secret reference, no target needed", () => {
  it("is defined from XML and listed; start is an UnsupportedError before any connection is tried, and the pool stays inactive", async () => {
    await using conn = await connect("test:///empty");
    // Port 1 has nothing listening: a dial would be a ConnectError, so the refusal comes first.
    const pool = await conn.pools.defineXml(`<pool type='iscsi'><name>named</name><source><host name='127.0.0.1' port='1'/>
      <device path='iqn.2026-01.org.example:disks'/><auth type='chap' username='alice'><secret usage='san-chap'/></auth></source></pool>`);
    expect((await conn.pools.list()).map((p) => p.name)).toContain("named");
    expect(await pool.config()).toMatchObject({ auth: { type: "chap", username: "alice", secret: { usage: "san-chap" } } });
    const error = await errorOf(pool.start());
    expect(error).toBeInstanceOf(UnsupportedError);
    expect((error as Error).message).toContain('gives the CHAP password of account "alice" as secret usage "san-chap", and no secret store is available locally');
    expect((await pool.info()).state).toBe("inactive");
  });

  it("a mutual account named only by its secret is refused the same way", async () => {
    await using conn = await connect("test:///empty");
    const pool = await conn.pools.define({
      name: "mutual", type: "iscsi", host: "127.0.0.1", port: 1, target: "iqn.2026-01.org.example:disks",
      auth: { type: "chap", username: "alice", password: "pw", mutual: { username: "tgt", secret: { uuid: "5b2c1e3a-9d4f-4e6a-8b7c-0d1e2f3a4b5c" } } },
    });
    const error = await errorOf(pool.start());
    expect(error).toBeInstanceOf(UnsupportedError);
    expect((error as Error).message).toContain('account "tgt" as secret uuid 5b2c1e3a-9d4f-4e6a-8b7c-0d1e2f3a4b5c');
  });
});

describe.skipIf(skipIscsi)("iscsi pool with a secret reference and its password, against tgtd", () => {
  let tgtd: Tgtd;
  let conn: Connection;
  const lun = new Uint8Array(MiB).map((_, i) => (i * 7) % 251);
  beforeAll(async () => {
    tgtd = await Tgtd.start({ luns: [{ lun: 1, sizeBytes: MiB }], chap: CHAP });
    await fsp.writeFile(tgtd.lunFile(1), lun);
    conn = await connect("test:///empty");
  });
  afterAll(async () => {
    await conn?.close();
    await tgtd?.stop();
  });

  it("starts with the password it gives, reads the LUN, and its XML names the secret without the password", async () => {
    const auth = { type: "chap" as const, ...CHAP, secret: { usage: "san-chap" } };
    const pool = await conn.pools.create({ name: "both", type: "iscsi", host: "127.0.0.1", port: tgtd.port, target: tgtd.target, auth });
    const bytes = await downloadBytes(target, await pool.volumes.get("unit:0:0:1"));
    expect(Buffer.compare(bytes, lun)).toBe(0);
    const xml = await pool.xml();
    expect(xml).toContain('<secret usage="san-chap"/>');
    expect(xml).not.toContain(CHAP.password);
    // That XML defines a pool that names the secret only: it cannot log in here.
    const copy = await conn.pools.defineXml(xml.replace("<name>both</name>", "<name>copy</name>"));
    expect(await errorOf(copy.start())).toBeInstanceOf(UnsupportedError);
  });
});
