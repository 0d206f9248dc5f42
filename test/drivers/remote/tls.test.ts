/**
 * The `tls` transport: x509 client certificate and CA in libvirt's pkipath layout (cacert.pem,
 * clientcert.pem, clientkey.pem), against a TLS peer on loopback that demands a client certificate
 * signed by its CA and speaks the handshake libvirtd would. Certificates are made with openssl for the
 * run. A server certificate from another CA, or a client without a certificate, is a ConnectError.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectError } from "../../../core/errors.ts";
import { parseUri } from "../../../core/uri.ts";
import { encode } from "../../../drivers/remote/rpc/codec.ts";
import { encodePacket, FrameDecoder, MessageStatus, MessageType } from "../../../drivers/remote/rpc/packet.ts";
import { AUTH_LIST, CONNECT_GET_HOSTNAME, CONNECT_SUPPORTS_FEATURE } from "../../../drivers/remote/rpc/protocol/connect.ts";
import { openSession } from "../../../drivers/remote/session.ts";
import { remoteTarget } from "../../../drivers/remote/uri.ts";

const hasOpenssl = (() => {
  try {
    execFileSync("openssl", ["version"]);
    return true;
  } catch {
    return false;
  }
})();

function makeCa(dir: string, name: string): void {
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${name}`, "-keyout", path.join(dir, `${name}.key`), "-out", path.join(dir, `${name}.pem`)], { stdio: "ignore" });
}

function makeCert(dir: string, ca: string, name: string, ext: string): void {
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const extFile = path.join(dir, `${name}.ext`);
  fs.writeFileSync(extFile, ext);
  execFileSync("openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${name}`, "-keyout", key, "-out", csr], { stdio: "ignore" });
  execFileSync("openssl", ["x509", "-req", "-in", csr, "-CA", path.join(dir, `${ca}.pem`), "-CAkey", path.join(dir, `${ca}.key`), "-CAcreateserial", "-days", "2", "-extfile", extFile, "-out", path.join(dir, `${name}.pem`)], { stdio: "ignore" });
}

describe.skipIf(!hasOpenssl && process.env.CI !== "true")("remote tls transport", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vk-remote-tls-"));
  const pki = path.join(dir, "pki");
  let server: tls.Server;
  let port = 0;
  const peers: string[] = [];
  beforeAll(async () => {
    fs.mkdirSync(pki);
    makeCa(dir, "ca");
    makeCa(dir, "otherca");
    makeCert(dir, "ca", "server", "subjectAltName=IP:127.0.0.1\n");
    makeCert(dir, "ca", "client", "extendedKeyUsage=clientAuth\n");
    fs.copyFileSync(path.join(dir, "ca.pem"), path.join(pki, "cacert.pem"));
    fs.copyFileSync(path.join(dir, "client.pem"), path.join(pki, "clientcert.pem"));
    fs.copyFileSync(path.join(dir, "client.key"), path.join(pki, "clientkey.pem"));
    server = tls.createServer({
      key: fs.readFileSync(path.join(dir, "server.key")),
      cert: fs.readFileSync(path.join(dir, "server.pem")),
      ca: fs.readFileSync(path.join(dir, "ca.pem")),
      requestCert: true,
      rejectUnauthorized: true,
    }, (socket) => {
      peers.push(String(socket.getPeerCertificate().subject.CN));
      // libvirtd's confirmation byte: the certificate was accepted, RPC follows.
      socket.write(Uint8Array.of(1));
      const decoder = new FrameDecoder();
      socket.on("error", () => {});
      socket.on("data", (chunk: Buffer) => {
        for (const { header } of decoder.push(new Uint8Array(chunk))) {
          const ret = header.procedure === AUTH_LIST.number ? encode(AUTH_LIST.ret, [0])
            : header.procedure === CONNECT_SUPPORTS_FEATURE.number ? encode(CONNECT_SUPPORTS_FEATURE.ret, 0)
            : header.procedure === CONNECT_GET_HOSTNAME.number ? encode(CONNECT_GET_HOSTNAME.ret, "tls-peer")
            : undefined;
          socket.write(encodePacket({ ...header, type: MessageType.REPLY, status: MessageStatus.OK }, ret));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    port = (server.address() as { port: number }).port;
  }, 60_000);
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("connects with the client certificate from pkipath and speaks RPC over TLS", async () => {
    const session = await openSession(remoteTarget(parseUri(`test+tls://127.0.0.1:${port}/default?pkipath=${pki}`)));
    expect(await session.client.call(CONNECT_GET_HOSTNAME, undefined)).toBe("tls-peer");
    await session.close();
    expect(peers).toContain("client");
  });

  it("refuses a server whose certificate another CA signed", async () => {
    const other = path.join(dir, "otherpki");
    fs.mkdirSync(other);
    fs.copyFileSync(path.join(dir, "otherca.pem"), path.join(other, "cacert.pem"));
    fs.copyFileSync(path.join(dir, "client.pem"), path.join(other, "clientcert.pem"));
    fs.copyFileSync(path.join(dir, "client.key"), path.join(other, "clientkey.pem"));
    const error = await openSession(remoteTarget(parseUri(`test+tls://127.0.0.1:${port}/default?pkipath=${other}`))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
  });

  it("says which certificate file is missing", async () => {
    const error = await openSession(remoteTarget(parseUri(`test+tls://127.0.0.1:${port}/default?pkipath=${dir}/nowhere`))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as Error).message).toMatch(/cannot read the TLS certificates.*nowhere/);
  });
});
