/**
 * virtkitd's TLS listener with libvirt's x509 model, driven by virsh and python3-libvirt over
 * `test+tls://127.0.0.1:PORT/default?pkipath=DIR`: a client certificate signed by `--tls-ca` gets in,
 * one signed by another CA is refused by the daemon. Certificates are made in the test with openssl.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTestCerts, type TestCerts } from "./_support/certs.ts";
import { python, skipDaemon, startVirtkitd, type VirtkitdProcess, virsh } from "./_support/virtkitd.ts";

describe.skipIf(skipDaemon)("virtkitd over TLS", () => {
  let daemon: VirtkitdProcess;
  let certs: TestCerts;
  let base: string;
  const certDir = mkdtempSync(join(tmpdir(), "vk-certs-"));
  beforeAll(async () => {
    certs = makeTestCerts(certDir);
    daemon = await startVirtkitd([
      "--listen", "tcp:127.0.0.1:0",
      "--tls-cert", certs.serverCertFile, "--tls-key", certs.serverKeyFile, "--tls-ca", certs.caFile,
    ]);
    const port = daemon.addresses.find((a) => a.startsWith("tls:"))!.split(":").pop();
    base = `test+tls://127.0.0.1:${port}/default`;
  });
  afterAll(async () => {
    await daemon?.stop();
    rmSync(certDir, { recursive: true, force: true });
  });

  it("serves virsh and python3-libvirt with a client certificate the CA signed", async () => {
    const list = await virsh(`${base}?pkipath=${certs.pkiDir}`, ["list", "--all"]);
    expect(list.stderr).toBe("");
    expect(list.stdout).toMatch(/1\s+test\s+running/);
    const py = await python(`${base}?pkipath=${certs.pkiDir}`, `
conn = libvirt.open(URI)
print(conn.isSecure(), conn.lookupByName("test").state())
conn.close()`);
    expect(py.stdout.trim()).toBe("1 [1, 1]");
    expect(daemon.stderr()).toMatch(/client \d+ connected \(127\.0\.0\.1:\d+ CN=client\)/);
  });

  it("refuses a client certificate signed by another CA", async () => {
    const rogue = join(daemon.dir, "rogue-pki");
    mkdirSync(rogue);
    // The client checks its own certificate against its cacert.pem, so the rogue client trusts the rogue
    // CA; no_verify=1 skips its check of the daemon's certificate, leaving the daemon's check of it.
    copyFileSync(join(certDir, "roguecacert.pem"), join(rogue, "cacert.pem"));
    copyFileSync(certs.rogueCertFile, join(rogue, "clientcert.pem"));
    copyFileSync(certs.rogueKeyFile, join(rogue, "clientkey.pem"));
    const refused = await virsh(`${base}?pkipath=${rogue}&no_verify=1`, ["list"]);
    expect(refused.code).not.toBe(0);
    // virsh reports the failed handshake, or dies of SIGPIPE writing into the socket the daemon cut.
    expect(refused.stderr).toMatch(/^$|failed to connect to the hypervisor/);
    expect(refused.stdout).not.toMatch(/test/);
    // The daemon never took it for a client.
    expect(daemon.stderr()).not.toMatch(/CN=rogue/);
  });
});
