/**
 * virtkitd serves calls concurrently: a long call (a 192 MiB volume clone, synchronous in libvirt's API)
 * holds up neither a later call on the same connection (its reply comes first, out of order) nor other
 * clients; a client that stops reading while events flow is cut off without hurting the others; and
 * SIGTERM lets a call in flight finish with its reply before the daemon exits.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobInfo } from "../../core/job.ts";
import { CONNECT_OPEN } from "../../drivers/remote/rpc/protocol/connect.ts";
import { CONNECT_LIST_ALL_DOMAINS, DOMAIN_LOOKUP_BY_NAME, DOMAIN_RESUME, DOMAIN_SUSPEND } from "../../drivers/remote/rpc/protocol/domain.ts";
import { CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY } from "../../drivers/remote/rpc/protocol/events.ts";
import { STORAGE_POOL_LOOKUP_BY_NAME, STORAGE_VOL_CREATE_XML_FROM, STORAGE_VOL_LOOKUP_BY_NAME } from "../../drivers/remote/rpc/protocol/storage.ts";
import { VIRTKIT_JOB_LIST } from "../../drivers/remote/rpc/protocol/virtkit.ts";
import { rpcClient } from "./_support/raw_client.ts";
import { skipDaemon, startVirtkitd, type VirtkitdProcess, virsh } from "./_support/virtkitd.ts";

async function opened(daemon: VirtkitdProcess) {
  const c = await rpcClient(daemon.socket);
  await c.client.call(CONNECT_OPEN, { name: "test:///default", flags: 0 });
  return c;
}

// A clone of a 192 MiB raw file with data in a dir pool: real file I/O, so it takes a while.
async function cloneCall(client: Awaited<ReturnType<typeof opened>>["client"], name: string) {
  const pool = await client.call(STORAGE_POOL_LOOKUP_BY_NAME, "big");
  const source = await client.call(STORAGE_VOL_LOOKUP_BY_NAME, { pool, name: "big.raw" });
  return client.call(STORAGE_VOL_CREATE_XML_FROM, {
    pool,
    xml: `<volume><name>${name}</name><capacity>201326592</capacity><target><format type='raw'/></target></volume>`,
    clonevol: source,
    flags: 0,
  });
}

describe.skipIf(skipDaemon)("virtkitd serves clients concurrently", () => {
  let daemon: VirtkitdProcess;
  beforeAll(async () => {
    daemon = await startVirtkitd(["--max-client-backlog", "64K"]);
    const dir = join(daemon.dir, "big");
    mkdirSync(dir);
    execFileSync("qemu-img", ["create", "-q", "-f", "raw", join(dir, "big.raw"), "192M"]);
    execFileSync("qemu-io", ["-f", "raw", "-c", "write -q -P 0x5a 0 192M", join(dir, "big.raw")]);
    const uri = daemon.uri();
    for (const args of [["pool-define-as", "big", "dir", "--target", dir], ["pool-start", "big"]]) {
      expect((await virsh(uri, args)).code).toBe(0);
    }
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it("answers a short call before a long one sent earlier on the same connection, and other clients meanwhile", async () => {
    const a = await opened(daemon);
    const b = await opened(daemon);
    try {
      const order: string[] = [];
      const clone = cloneCall(a.client, "copy1.qcow2").then(() => order.push("clone"));
      // Sent after the clone's CALL, on the same socket.
      const list = a.client.call(CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 }).then(() => order.push("list"));
      const others = (async () => {
        for (let i = 0; i < 10; i++) await b.client.call(DOMAIN_LOOKUP_BY_NAME, "test");
        order.push("other client x10");
      })();
      await Promise.all([clone, list, others]);
      expect(order.indexOf("list")).toBeLessThan(order.indexOf("clone"));
      expect(order.indexOf("other client x10")).toBeLessThan(order.indexOf("clone"));
    } finally {
      a.socket.destroy();
      b.socket.destroy();
    }
  });

  it("cuts off a client that stops reading while events flow; the others keep being served", async () => {
    const stalled = await opened(daemon);
    const busy = await opened(daemon);
    try {
      await stalled.client.call(CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, { eventID: 0, dom: undefined });
      stalled.socket.pause(); // it reads nothing from now on
      const dom = await busy.client.call(DOMAIN_LOOKUP_BY_NAME, "test");
      const deadline = Date.now() + 60_000;
      while (!/stopped reading/.test(daemon.stderr())) {
        if (Date.now() > deadline) throw new Error("the stalled client was never cut off");
        await busy.client.call(DOMAIN_SUSPEND, { dom });
        await busy.client.call(DOMAIN_RESUME, { dom });
      }
      expect(daemon.stderr()).toMatch(/client \d+ disconnected: it stopped reading \(\d+ bytes queued\)/);
      expect((await busy.client.call(CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 })).ret).toBeGreaterThan(0);
    } finally {
      stalled.socket.destroy();
      busy.socket.destroy();
    }
  });

  it("finishes a call in flight when it gets SIGTERM, then exits", async () => {
    const a = await opened(daemon);
    const watcher = await opened(daemon);
    const clone = cloneCall(a.client, "copy2.qcow2").then(() => "replied", (error) => `failed: ${error}`);
    // Wait until the daemon works on it (its job is listed), so the call is in flight for sure.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const jobs = JSON.parse(await watcher.client.call(VIRTKIT_JOB_LIST, JSON.stringify({ type: "volume-clone", state: "running" }))) as JobInfo[];
      if (jobs.some((j) => j.target.volume === "copy2.qcow2")) break;
      if (Date.now() > deadline) throw new Error("the clone never started");
      await new Promise((r) => setTimeout(r, 5));
    }
    const stopping = daemon.stop();
    expect(await clone).toBe("replied");
    await stopping;
    expect(daemon.stderr()).toMatch(/SIGTERM: stopping\nvirtkitd: (client \d+ disconnected \(.*\)\nvirtkitd: )*stopped\n$/);
  });
});
