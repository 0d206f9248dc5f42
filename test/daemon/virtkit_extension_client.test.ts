/**
 * The extension's client (drivers/remote/virtkit_extension.ts): against virtkitd it lists jobs, applies
 * verbs and replays events with `since`; against Debian's libvirtd the probe says "not offered" and the
 * connection keeps working with libvirt's procedures alone.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { CoreEvent } from "../../core/events.ts";
import { CONNECT_OPEN } from "../../drivers/remote/rpc/protocol/connect.ts";
import { CONNECT_LIST_ALL_DOMAINS } from "../../drivers/remote/rpc/protocol/domain.ts";
import { probeVirtkitExtension } from "../../drivers/remote/virtkit_extension.ts";
import { type RunningLibvirtd, skipLibvirtd, startLibvirtd } from "../_support/libvirtd.ts";
import { rpcClient } from "./_support/raw_client.ts";
import { skipDaemon, startVirtkitd, type VirtkitdProcess, virsh } from "./_support/virtkitd.ts";

let daemon: VirtkitdProcess | undefined;
let libvirtd: RunningLibvirtd | undefined;
afterAll(async () => {
  await daemon?.stop();
  await libvirtd?.stop();
});

describe.skipIf(skipDaemon)("virtkit extension client against virtkitd", () => {
  it("lists a block pull, pauses and aborts it, and replays its events from since", async () => {
    daemon = await startVirtkitd();
    const { client, socket } = await rpcClient(daemon.socket);
    try {
      await client.call(CONNECT_OPEN, { name: "test:///default", flags: 0 });
      const ext = (await probeVirtkitExtension(client))!;
      expect(ext.version).toBe(1);
      const before = await (async () => {
        // The current newest seq: an empty replay from "now" would show nothing, so take it from a first event.
        const controller = new AbortController();
        expect((await virsh(daemon!.uri(), ["suspend", "test"])).code).toBe(0);
        expect((await virsh(daemon!.uri(), ["resume", "test"])).code).toBe(0);
        for await (const event of ext.subscribe({ since: 0, types: ["domain:*"], signal: controller.signal })) {
          if (event.type === "domain:resumed") {
            controller.abort();
            return event.seq;
          }
        }
        throw new Error("no domain:resumed event");
      })();
      expect((await virsh(daemon.uri(), ["blockpull", "test", "vda", "--bandwidth", "1"])).code).toBe(0);
      const [pull] = await ext.listJobs({ type: "block-pull", state: "running" });
      expect(pull?.target).toMatchObject({ domain: "test", disk: "vda" });
      await ext.verb(pull!.id, "pause");
      expect((await ext.getJob(pull!.id)).state).toBe("paused");
      await ext.verb(pull!.id, "abort");
      const seen: CoreEvent[] = [];
      const controller = new AbortController();
      for await (const event of ext.subscribe({ since: before, types: ["job:*"], signal: controller.signal })) {
        seen.push(event);
        if (event.type === "job:aborted") controller.abort();
      }
      expect(seen.map((e) => e.type)).toEqual(expect.arrayContaining(["job:created", "job:state", "job:aborted"]));
      expect(seen.every((e) => e.seq > before)).toBe(true);
    } finally {
      socket.destroy();
    }
  });
});

describe.skipIf(skipLibvirtd)("virtkit extension client against Debian's libvirtd", () => {
  it("is not offered, and the connection goes on with libvirt's procedures", async () => {
    libvirtd = await startLibvirtd({ driver: "test" });
    const { client, socket } = await rpcClient(libvirtd.socketPath);
    try {
      await client.call(CONNECT_OPEN, { name: "test:///default", flags: 0 });
      expect(await probeVirtkitExtension(client)).toBeUndefined();
      expect((await client.call(CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 })).domains.map((d) => d.name)).toEqual(["test"]);
    } finally {
      socket.destroy();
    }
  });
});
