/**
 * The initiator against a real target (a private tgtd per suite), with libiscsi's tools as the referee:
 * login with and without CHAP, REPORT LUNS / INQUIRY / READ CAPACITY(16) as `iscsi-ls`, `iscsi-inq` and
 * `iscsi-readcapacity16` see them, reads and writes checked against the LUN's backing file, many
 * commands in flight, and every failure bounded: wrong secret, missing credentials, unknown target,
 * silent portal, dropped connection, stalled target, unanswered keepalive.
 */
import fsp from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectError } from "../../../core/errors.ts";
import { login, type LoginOptions } from "../../../drivers/iscsi/initiator/login.ts";
import { ScsiError, ScsiLun } from "../../../drivers/iscsi/initiator/scsi.ts";
import { discoverTargets } from "../../../drivers/iscsi/mod.ts";
import { run, skipIscsi, Tgtd } from "../../_support/tgtd.ts";
import { NO_TAG, Op, u32 } from "../../../drivers/iscsi/initiator/pdu.ts";
import { PduReader } from "../../../drivers/iscsi/initiator/pdu_reader.ts";
import { until } from "../qemu/_support.ts";
import { Relay, silentPortal } from "./_proxy.ts";

const INITIATOR = "iqn.2026-12.test.virtkit:initiator";
const CHAP = { username: "vk-user", password: "vk-secret-123" };
const MiB = 1 << 20;

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed * 7 + (i >>> 9)) & 0xff;
  return out;
}

/** How long `promise` takes to settle, and its error. */
async function failureOf(promise: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const start = Date.now();
  const error = await promise.then(() => undefined, (e: unknown) => e);
  return { error, ms: Date.now() - start };
}

describe.skipIf(skipIscsi)("initiator against tgtd, no authentication", () => {
  let tgtd: Tgtd;
  const options = (): LoginOptions => ({ host: "127.0.0.1", port: tgtd.port, target: tgtd.target, initiatorName: INITIATOR });
  beforeAll(async () => {
    tgtd = await Tgtd.start({ luns: [{ lun: 1, sizeBytes: 16 * MiB }, { lun: 2, sizeBytes: 4 * MiB, readonly: true }] });
  });
  afterAll(() => tgtd?.stop());

  it("sees the LUNs, types and sizes that libiscsi's tools report", async () => {
    const session = await login(options());
    try {
      const luns = await new ScsiLun(session, 0).reportLuns();
      const listing = await run("iscsi-ls", ["-s", `iscsi://127.0.0.1:${tgtd.port}`]);
      expect(listing).toContain(`Target:${tgtd.target}`);
      const refereeLuns = [...listing.matchAll(/Lun:(\d+)\s+Type:(\w+)/g)].map((m) => [Number(m[1]), m[2]]);
      const ours: Array<[number, string]> = [];
      for (const lun of luns) {
        const inquiry = await new ScsiLun(session, lun).inquiry();
        ours.push([lun, inquiry.deviceType === 0 ? "DIRECT_ACCESS" : inquiry.deviceType === 0x0c ? "STORAGE_ARRAY_CONTROLLER" : String(inquiry.deviceType)]);
      }
      expect(ours).toEqual(refereeLuns);
      const inq = await new ScsiLun(session, 1).inquiry();
      const refInq = await run("iscsi-inq", [tgtd.url(1)]);
      expect(refInq).toContain(`Vendor:${inq.vendor}`);
      expect(refInq).toContain(`Product:${inq.product}`);
      for (const lun of [1, 2]) {
        const capacity = await new ScsiLun(session, lun).readCapacity();
        const ref = await run("iscsi-readcapacity16", [tgtd.url(lun)]);
        expect(ref).toContain(`RETURNED LOGICAL BLOCK ADDRESS:${capacity.blocks - 1}`);
        expect(ref).toContain(`LOGICAL BLOCK LENGTH IN BYTES:${capacity.blockBytes}`);
        expect(ref).toContain(`LBPME:${capacity.lbpme ? 1 : 0}`);
      }
      expect(await new ScsiLun(session, 2).writeProtected()).toBe(true);
      expect(await new ScsiLun(session, 1).writeProtected()).toBe(false);
    } finally {
      await session.logout();
    }
  });

  it("writes and reads with many commands in flight; the backing file holds what was written", async () => {
    const session = await login(options());
    try {
      const lun = new ScsiLun(session, 1);
      const data = pattern(4 * MiB, 3);
      // 64 writes of 64 KiB at once: more than one burst each, R2T and Data-Out for all of them.
      await Promise.all(Array.from({ length: 64 }, (_, i) => lun.write(i * 128, 128, data.subarray(i * 65536, (i + 1) * 65536))));
      await lun.synchronizeCache();
      const file = await fsp.readFile(tgtd.lunFile(1));
      expect(Buffer.compare(file.subarray(0, data.byteLength), data)).toBe(0);
      // 128 reads of 32 KiB at once, into one buffer: each lands at its own place.
      const back = new Uint8Array(data.byteLength);
      const counts = await Promise.all(Array.from({ length: 128 }, (_, i) => lun.read(i * 64, 64, back.subarray(i * 32768, (i + 1) * 32768))));
      expect(counts.every((n) => n === 32768)).toBe(true);
      expect(Buffer.compare(back, data)).toBe(0);
      // The session still answers a ping after all that.
      await session.ping();
    } finally {
      await session.logout();
    }
  });

  it("reports a SCSI failure with its sense: writing the write-protected LUN, reading past the end", async () => {
    const session = await login(options());
    try {
      const ro = new ScsiLun(session, 2);
      const error = await ro.write(0, 1, new Uint8Array(512)).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(ScsiError);
      expect((error as ScsiError).senseKey).toBe(7); // DATA PROTECT
      expect((error as ScsiError).message).toContain("DATA PROTECT");
      const capacity = await ro.readCapacity();
      const past = await ro.read(capacity.blocks, 1, new Uint8Array(512)).then(() => undefined, (e: unknown) => e);
      expect((past as ScsiError).senseKey).toBe(5); // ILLEGAL REQUEST
      // The session survives a failed command.
      expect(await ro.read(0, 1, new Uint8Array(512))).toBe(512);
    } finally {
      await session.logout();
    }
  });

  it("an aborted read rejects with the signal's reason; its late answer is dropped and the session goes on", async () => {
    const session = await login(options());
    try {
      const lun = new ScsiLun(session, 1);
      const controller = new AbortController();
      const reason = new Error("caller gave up");
      const buffer = new Uint8Array(MiB).fill(0xee);
      const aborted = lun.read(0, 2048, buffer, controller.signal);
      controller.abort(reason);
      expect(await aborted.then(() => undefined, (e: unknown) => e)).toBe(reason);
      // The target still answers the aborted command; the session drops that answer and carries on.
      await session.ping();
      const fresh = new Uint8Array(4096);
      expect(await lun.read(0, 8, fresh)).toBe(4096);
      expect(session.alive).toBe(true);
      expect(buffer.every((b) => b === 0xee)).toBe(true); // nothing landed in the buffer after the abort
    } finally {
      await session.logout();
    }
  });

  it("discovers the portal's targets as iscsi-ls does", async () => {
    const targets = await discoverTargets({ host: "127.0.0.1", port: tgtd.port, initiatorName: INITIATOR });
    const listing = await run("iscsi-ls", [`iscsi://127.0.0.1:${tgtd.port}`]);
    const referee = [...listing.matchAll(/Target:(\S+) Portal:(\S+)/g)].map((m) => ({ name: m[1], addresses: [m[2]] }));
    expect(targets).toEqual(referee);
    expect(targets[0]?.name).toBe(tgtd.target);
  });

  it("an unknown target is a ConnectError that says so", async () => {
    const { error } = await failureOf(login({ ...options(), target: "iqn.2026-12.test.virtkit:nope" }));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toContain("does not exist");
  });

  it("a dropped connection rejects every pending command with a ConnectError", async () => {
    const relay = await Relay.start(tgtd.port);
    try {
      const session = await login({ ...options(), port: relay.port });
      const lun = new ScsiLun(session, 1);
      relay.stall();
      const pending = Array.from({ length: 8 }, (_, i) => lun.read(i * 2048, 2048, new Uint8Array(MiB)).then(() => undefined, (e: unknown) => e));
      relay.cut();
      const errors = await Promise.all(pending);
      expect(errors.every((e) => e instanceof ConnectError)).toBe(true);
      expect(session.alive).toBe(false);
      const later = await lun.read(0, 1, new Uint8Array(512)).then(() => undefined, (e: unknown) => e);
      expect(later).toBeInstanceOf(ConnectError);
    } finally {
      await relay.close();
    }
  });

  it("answers the target's own NOP-In pings, so the target keeps an idle session", async () => {
    await tgtd.adm(["--op", "update", "--mode", "target", "--tid", "1", "--name", "nop_interval", "--value", "1"]);
    await tgtd.adm(["--op", "update", "--mode", "target", "--tid", "1", "--name", "nop_count", "--value", "2"]);
    const relay = await Relay.start(tgtd.port);
    try {
      const session = await login({ ...options(), port: relay.port, keepaliveIntervalMs: 0 });
      let pings = 0;
      const watch = new PduReader({ place: () => undefined, pdu: (h) => void (h.opcode === Op.nopIn && u32(h.bytes, 20) !== NO_TAG && pings++) });
      relay.onTargetBytes = (chunk) => watch.push(chunk);
      // tgtd gives up after nop_count unanswered pings; four pings mean the answers reached it.
      await until(() => pings >= 4, "four NOP-In pings from tgtd", 20_000);
      expect(session.alive).toBe(true);
      expect(await new ScsiLun(session, 1).read(0, 1, new Uint8Array(512))).toBe(512);
      await session.logout();
    } finally {
      await relay.close();
      await tgtd.adm(["--op", "update", "--mode", "target", "--tid", "1", "--name", "nop_interval", "--value", "0"]);
    }
  });

  it("a stalled target fails the command after the command timeout, not never", async () => {
    const relay = await Relay.start(tgtd.port);
    try {
      const session = await login({ ...options(), port: relay.port, commandTimeoutMs: 300, keepaliveIntervalMs: 0 });
      relay.stall();
      const { error, ms } = await failureOf(new ScsiLun(session, 1).read(0, 8, new Uint8Array(4096)));
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as Error).message).toContain("no answer within 300 ms");
      expect(ms).toBeLessThan(10_000);
    } finally {
      await relay.close();
    }
  });

  it("an unanswered keepalive ends an idle session", async () => {
    const relay = await Relay.start(tgtd.port);
    try {
      const session = await login({ ...options(), port: relay.port, keepaliveIntervalMs: 100, keepaliveTimeoutMs: 200 });
      await session.ping(); // answered while the relay passes bytes
      relay.stall();
      await session.closed;
      expect(session.alive).toBe(false);
      const error = await session.ping().then(() => undefined, (e: unknown) => e);
      expect((error as Error).message).toContain("nop got no answer within 200 ms");
    } finally {
      await relay.close();
    }
  });

  it("an aborted login rejects with the signal's reason and closes the connection", async () => {
    const portal = await silentPortal();
    try {
      const controller = new AbortController();
      const reason = new Error("no longer needed");
      const pending = failureOf(login({ ...options(), port: portal.port, signal: controller.signal }));
      await until(() => portal.connections > 0, "the login to connect");
      controller.abort(reason);
      const { error } = await pending;
      expect(error).toBe(reason);
      await until(() => portal.open === 0, "the aborted login's connection to close");
    } finally {
      await portal.close();
    }
  });

  it("a portal that never answers fails the login within the login timeout", async () => {
    const portal = await silentPortal();
    try {
      const { error, ms } = await failureOf(login({ ...options(), port: portal.port, loginTimeoutMs: 300 }));
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as Error).message).toContain("no answer within the login timeout");
      expect(ms).toBeLessThan(10_000);
    } finally {
      await portal.close();
    }
  });
});

describe.skipIf(skipIscsi)("initiator against tgtd with CHAP", () => {
  let tgtd: Tgtd;
  const options = (): LoginOptions => ({ host: "127.0.0.1", port: tgtd.port, target: tgtd.target, initiatorName: INITIATOR });
  beforeAll(async () => {
    tgtd = await Tgtd.start({ luns: [{ lun: 1, sizeBytes: 4 * MiB }], chap: CHAP });
  });
  afterAll(() => tgtd?.stop());

  it("logs in with the right secret and reads what libiscsi (logged in the same way) wrote", async () => {
    const data = pattern(MiB, 9);
    await fsp.writeFile(tgtd.lunFile(1), data, { flag: "r+" });
    const session = await login({ ...options(), auth: CHAP });
    try {
      const back = new Uint8Array(MiB);
      await new ScsiLun(session, 1).read(0, 2048, back);
      expect(Buffer.compare(back, data)).toBe(0);
    } finally {
      await session.logout();
    }
    // The referee agrees that this target wants these credentials.
    expect(await run("iscsi-inq", [tgtd.url(1, CHAP)])).toContain("DIRECT_ACCESS");
  });

  it("a wrong secret is a prompt ConnectError naming the user, not a hang", async () => {
    const { error, ms } = await failureOf(login({ ...options(), auth: { ...CHAP, password: "wrong-secret-12" } }));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toContain(`CHAP authentication failed for user "${CHAP.username}"`);
    expect(ms).toBeLessThan(5_000);
    // libiscsi is refused as well with that secret.
    await expect(run("iscsi-inq", [tgtd.url(1, { ...CHAP, password: "wrong-secret-12" })])).rejects.toThrow();
  });

  it("no credentials for a target that wants them is a ConnectError that says what to give", async () => {
    const { error } = await failureOf(login(options()));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toMatch(/requires (CHAP )?authentication/);
  });
});
