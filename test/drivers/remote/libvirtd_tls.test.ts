/**
 * The remote driver's `+tls` transport against a real libvirtd 9.0 TLS listener (`listen_tls`, gnutls,
 * client certificates verified against the CA), with certificates made by openssl for the run in
 * libvirt's pkipath layout: domains listed and driven (events arrive over TLS too), with virsh over the
 * same listener as the referee; a client certificate from another CA is refused by libvirtd, and a
 * server certificate the client's CA did not sign is refused by the driver, each as a ConnectError.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../../../mod.ts";
import { ConnectError } from "../../../core/errors.ts";
import { type RunningLibvirtd, skipLibvirtd, startLibvirtd } from "../../_support/libvirtd.ts";
import { makeTestCerts, type TestCerts } from "../../daemon/_support/certs.ts";
import { missingPeers } from "../../daemon/_support/virtkitd.ts";

const skip = skipLibvirtd || (missingPeers.includes("openssl") && process.env.CI !== "true");

describe.skipIf(skip)("remote driver -> libvirtd over TLS (x509 client certificates)", () => {
  const scratch = mkdtempSync(join(tmpdir(), "vk-libvirtd-tls-"));
  let certs: TestCerts;
  let daemon: RunningLibvirtd;
  const uri = (pkiDir: string) => `test+tls://127.0.0.1:${daemon.tlsPort}/default?pkipath=${pkiDir}`;
  /** A pkipath directory with the given CA and client pair. */
  const pki = (name: string, ca: string, cert: string, key: string) => {
    const dir = join(scratch, name);
    mkdirSync(dir);
    copyFileSync(ca, join(dir, "cacert.pem"));
    copyFileSync(cert, join(dir, "clientcert.pem"));
    copyFileSync(key, join(dir, "clientkey.pem"));
    return dir;
  };
  beforeAll(async () => {
    certs = makeTestCerts(join(scratch, "certs"));
    daemon = await startLibvirtd({ driver: "test", tls: { caFile: certs.caFile, certFile: certs.serverCertFile, keyFile: certs.serverKeyFile } });
  }, 60_000);
  afterAll(async () => {
    await daemon?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("lists and drives libvirt's test driver over TLS, as virsh over the same listener sees it", async () => {
    await using conn = await connect(uri(certs.pkiDir));
    expect((await conn.domains.list()).map((d) => d.name)).toEqual(["test"]);
    const dom = await conn.domains.get("test");
    expect((await dom.info()).state).toBe("running");
    const suspended = new Promise<void>((resolve) => conn.events.once("domain:suspended", () => resolve()));
    await dom.suspend();
    await suspended;
    // The referee: libvirt's own client, same listener, same certificates.
    const state = execFileSync("virsh", ["-c", uri(certs.pkiDir), "domstate", "test"], { encoding: "utf8" });
    expect(state.trim()).toBe("paused");
    await dom.resume();
    expect((await dom.info()).state).toBe("running");
  }, 60_000);

  it("is refused by libvirtd with a client certificate its CA did not sign: ConnectError", async () => {
    const rogue = pki("rogue-client", certs.caFile, certs.rogueCertFile, certs.rogueKeyFile);
    const error = await connect(uri(rogue)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    // gnutls completes the handshake, then libvirtd checks the certificate and hangs up.
    expect((error as Error).message).toMatch(/closed the connection after the TLS handshake/);
  }, 60_000);

  it("refuses a server whose certificate the client's CA did not sign: ConnectError naming the peer", async () => {
    // The rogue CA's own certificate stands in as "our" CA: libvirtd's server certificate fails to verify.
    const wrongCa = pki("wrong-ca", join(scratch, "certs", "roguecacert.pem"), certs.clientCertFile, certs.clientKeyFile);
    const error = await connect(uri(wrongCa)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toContain(`127.0.0.1:${daemon.tlsPort}`);
    expect((error as Error).message).toMatch(/unable to verify/);
  }, 60_000);
});
