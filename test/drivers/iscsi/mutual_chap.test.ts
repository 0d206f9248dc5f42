/**
 * Mutual CHAP against a real tgtd: the initiator answers the target's challenge, sends its own, and
 * checks the target's answer against the outgoing account (`tgtadm --mode account --op bind --outgoing`).
 * libiscsi's `iscsi-inq` (`?target_user=&target_password=`) is the referee for which secrets are right.
 * A target that cannot or does not prove itself is a `ConnectError` saying so; the pool refuses to start.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Connection } from "../../../mod.ts";
import { ConnectError } from "../../../core/errors.ts";
import { login, type LoginOptions } from "../../../drivers/iscsi/initiator/login.ts";
import { ScsiLun } from "../../../drivers/iscsi/initiator/scsi.ts";
import { run, skipIscsi, Tgtd } from "../../_support/tgtd.ts";

const INITIATOR = "iqn.2026-12.test.virtkit:mutual";
const CHAP = { username: "vk-in-user", password: "vk-in-secret-123" };
const OUTGOING = { username: "vk-target", password: "vk-target-secret-9" };
const MiB = 1 << 20;

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(() => undefined, (e: unknown) => e);
}

describe.skipIf(skipIscsi)("mutual CHAP against tgtd", () => {
  let tgtd: Tgtd;
  let conn: Connection;
  const options = (mutual: { username: string; password: string }): LoginOptions => ({
    host: "127.0.0.1",
    port: tgtd.port,
    target: tgtd.target,
    initiatorName: INITIATOR,
    auth: { ...CHAP, mutual },
  });
  beforeAll(async () => {
    tgtd = await Tgtd.start({ luns: [{ lun: 1, sizeBytes: 2 * MiB }], chap: CHAP });
    conn = await connect("test:///empty");
  });
  afterAll(async () => {
    await conn?.close();
    await tgtd?.stop();
  });

  it("a target without an outgoing account cannot prove itself: ConnectError; with one bound, the login succeeds", async () => {
    const before = await errorOf(login(options(OUTGOING)));
    expect(before).toBeInstanceOf(ConnectError);
    expect((before as Error).message).toMatch(/no outgoing account/);
    await tgtd.bindOutgoing(OUTGOING);
    const session = await login(options(OUTGOING));
    try {
      expect((await new ScsiLun(session, 1).readCapacity()).blocks * 512).toBe(2 * MiB);
    } finally {
      await session.logout();
    }
    expect(await run("iscsi-inq", [tgtd.url(1, CHAP, OUTGOING)])).toContain("DIRECT_ACCESS");
  });

  it("a wrong target secret is a ConnectError saying the target did not prove itself; libiscsi refuses it too", async () => {
    const wrong = { ...OUTGOING, password: "not-the-target-secret" };
    const error = await errorOf(login(options(wrong)));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toContain(`the target did not prove itself (mutual CHAP): its answer does not match the secret of "${OUTGOING.username}"`);
    await expect(run("iscsi-inq", [tgtd.url(1, CHAP, wrong)])).rejects.toThrow(/Invalid CHAP_R response from the target/);
  });

  it("a target answering under another name is refused", async () => {
    const error = await errorOf(login(options({ username: "someone-else", password: OUTGOING.password })));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toContain(`it answered as "${OUTGOING.username}", not as "someone-else"`);
  });

  it("an iscsi pool with auth.mutual starts and lists the LUN; a wrong target secret leaves it inactive", async () => {
    const config = (password: string) => ({
      name: `san-${password.length}`,
      type: "iscsi" as const,
      host: "127.0.0.1",
      port: tgtd.port,
      target: tgtd.target,
      auth: { type: "chap" as const, ...CHAP, mutual: { username: OUTGOING.username, password } },
    });
    const pool = await conn.pools.create(config(OUTGOING.password));
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["unit:0:0:1"]);
    const bad = await conn.pools.define(config("wrong-target-secret-x"));
    const error = await errorOf(bad.start());
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toContain("did not prove itself");
    expect((await bad.info()).state).toBe("inactive");
  });
});
