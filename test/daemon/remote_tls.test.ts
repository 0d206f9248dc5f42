/**
 * virtkit's remote driver over TLS against virtkitd (`test+tls://127.0.0.1:PORT/default?pkipath=DIR`),
 * with certificates made by openssl: libvirt's x509 handshake, its confirmation byte included.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { connect } from "../../mod.ts";
import { makeTestCerts } from "./_support/certs.ts";
import { skipDaemon, startVirtkitd, type VirtkitdProcess } from "./_support/virtkitd.ts";

describe.skipIf(skipDaemon)("the remote driver over TLS against virtkitd", () => {
  const certDir = mkdtempSync(join(tmpdir(), "vk-certs-"));
  let daemon: VirtkitdProcess | undefined;
  afterAll(async () => {
    await daemon?.stop();
    rmSync(certDir, { recursive: true, force: true });
  });

  it("connects with a client certificate the CA signed and lists the domains", async () => {
    const certs = makeTestCerts(certDir);
    daemon = await startVirtkitd(["--listen", "tcp:127.0.0.1:0", "--tls-cert", certs.serverCertFile, "--tls-key", certs.serverKeyFile, "--tls-ca", certs.caFile]);
    const port = daemon.addresses.find((a) => a.startsWith("tls:"))!.split(":").pop();
    await using conn = await connect(`test+tls://127.0.0.1:${port}/default?pkipath=${certs.pkiDir}`, { signal: AbortSignal.timeout(20_000) });
    expect((await conn.domains.list()).map((d) => d.name)).toEqual(["test"]);
    expect((await (await conn.domains.get("test")).info()).state).toBe("running");
  });
});
