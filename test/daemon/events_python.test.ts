/**
 * Events and python3-libvirt against virtkitd: `virsh event --all --loop` prints lifecycle and block job
 * events, python3-libvirt lists, looks up, pulls with a BLOCK_JOB_2 callback, and streams a volume both
 * ways; two clients on one URI see each other's changes.
 */
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { python, skipDaemon, type VirtkitdProcess, useVirtkitd, virsh } from "./_support/virtkitd.ts";

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000, step?: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    if (step) await step();
    else await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(skipDaemon)("events and python3-libvirt against virtkitd", () => {
  let daemon: VirtkitdProcess;
  let uri: string;
  useVirtkitd((started) => {
    daemon = started;
    uri = started.uri("test:///default");
  });

  it("virsh event --all --loop prints lifecycle and block job events", async () => {
    const watcher = spawn("virsh", ["-c", uri, "event", "--all", "--loop", "--timeout", "60"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    watcher.stdout.on("data", (d) => (out += d));
    try {
      // The watcher registers right after it connects; toggling until the first event shows is the
      // synchronisation (the events themselves), not a sleep.
      await until(() => out.includes("Suspended"), "the first lifecycle event", 30_000, async () => {
        await virsh(uri, ["suspend", "test"]);
        await virsh(uri, ["resume", "test"]);
      });
      await virsh(uri, ["destroy", "test"]);
      await virsh(uri, ["start", "test"]);
      await virsh(uri, ["blockpull", "test", "vda", "--wait"], 120_000);
      await until(() => out.includes("event 'block-job-2'"), "the block job events");
      expect(out).toMatch(/event 'lifecycle' for domain 'test': Suspended Paused/);
      expect(out).toMatch(/event 'lifecycle' for domain 'test': Resumed Unpaused/);
      expect(out).toMatch(/event 'lifecycle' for domain 'test': Stopped Destroyed/);
      expect(out).toMatch(/event 'lifecycle' for domain 'test': Started Booted/);
      expect(out).toMatch(/event 'block-job' for domain 'test': Block Pull for \/default-pool\/test\.qcow2 completed/);
      expect(out).toMatch(/event 'block-job-2' for domain 'test': Block Pull for vda completed/);
    } finally {
      watcher.kill("SIGTERM");
    }
  });

  it("python3-libvirt lists, looks up and pulls with a BLOCK_JOB_2 callback", async () => {
    const result = await python(uri, `
import threading
libvirt.virEventRegisterDefaultImpl()
conn = libvirt.open(URI)
threading.Thread(target=lambda: [libvirt.virEventRunDefaultImpl() for _ in iter(int, 1)], daemon=True).start()
print("names", sorted(d.name() for d in conn.listAllDomains()))
dom = conn.lookupByName("test")
state, maxmem, mem, vcpus, cputime = dom.info()
print("info", state, maxmem, vcpus)
done = threading.Event()
seen = []
def cb(conn, dom, dst, type, status, opaque):
    seen.append((dom.name(), dst, type, status))
    if status == libvirt.VIR_DOMAIN_BLOCK_JOB_COMPLETED: done.set()
cid = conn.domainEventRegisterAny(dom, libvirt.VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, cb, None)
dom.blockPull("vda", 0, 0)
info = dom.blockJobInfo("vda", 0)
print("job", info.get("type"))
if not done.wait(60): sys.exit("no completion event")
print("event", seen[-1])
print("after", dom.blockJobInfo("vda", 0))
conn.domainEventDeregisterAny(cid)
try:
    conn.lookupByName("nosuch")
except libvirt.libvirtError as e:
    print("error", e.get_error_code())
conn.close()
`, 120_000);
    // libvirt's default error handler prints the expected look-up failure; nothing else may appear.
    expect(result.stderr).toMatch(/^libvirt: .* error : Cannot find domain "nosuch"\n$/);
    expect(result.stdout).toMatch(/^names \['test'\]$/m);
    expect(result.stdout).toMatch(/^info 1 2097152 2$/m);
    expect(result.stdout).toMatch(/^event \('test', 'vda', 1, 0\)$/m);
    expect(result.stdout).toMatch(/^after \{\}$/m);
    expect(result.stdout).toMatch(/^error 42$/m);
  });

  it("python3-libvirt streams a volume in and out, and a second client sees the first one's changes", async () => {
    const result = await python(uri, `
import os
conn = libvirt.open(URI)
other = libvirt.open(URI)
pool = conn.storagePoolLookupByName("default-pool")
vol = pool.createXML("<volume><name>py.raw</name><capacity unit='bytes'>3145728</capacity><target><format type='raw'/></target></volume>", 0)
print("seen by other", other.storagePoolLookupByName("default-pool").storageVolLookupByName("py.raw").name())
data = os.urandom(3145728)
st = conn.newStream(0)
vol.upload(st, 0, len(data), 0)
for i in range(0, len(data), 1 << 20): st.send(data[i:i + (1 << 20)])
st.finish()
st = conn.newStream(0)
vol.download(st, 0, 0, 0)
got = b""
while True:
    chunk = st.recv(1 << 18)
    if not chunk: break
    got += chunk
st.finish()
print("same", got == data, len(got))
vol.delete(0)
other.close(); conn.close()
`, 120_000);
    expect(result.stderr).toBe("");
    expect(result.stdout).toMatch(/^seen by other py\.raw$/m);
    expect(result.stdout).toMatch(/^same True 3145728$/m);
  });
});
