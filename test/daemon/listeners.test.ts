import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { afterAll, describe, expect, it } from "vitest";
import { type AcceptedSocket, startListener } from "../../daemon/listeners.ts";
import { makeTestCerts } from "./_support/certs.ts";

const dir = mkdtempSync(join(tmpdir(), "vk-listen-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function echoTo(peers: string[]) {
  return (client: AcceptedSocket) => {
    peers.push(client.peer);
    client.socket.on("data", (d) => client.socket.write(d));
  };
}

describe("startListener (unix)", () => {
  it("creates the socket with mode 0600, replaces a stale one, refuses a live one", async () => {
    const path = join(dir, "a.sock");
    // A stale socket file: bound once, its server gone.
    const stale = createServer();
    await new Promise<void>((resolve) => stale.listen(path, resolve));
    await new Promise<void>((resolve) => stale.close(() => resolve()));
    writeFileSync(join(dir, "not-a-socket"), "x");
    const peers: string[] = [];
    const listener = await startListener({ kind: "unix", path }, { socketMode: 0o600, onClient: echoTo(peers) });
    try {
      expect(statSync(path).mode & 0o777).toBe(0o600);
      await expect(startListener({ kind: "unix", path }, { socketMode: 0o600, onClient: () => {} }))
        .rejects.toThrow(/another daemon is serving it/);
      await expect(startListener({ kind: "unix", path: join(dir, "not-a-socket") }, { socketMode: 0o600, onClient: () => {} }))
        .rejects.toThrow(/not a socket/);
      const socket = createConnection(path);
      socket.write("hi");
      const echoed = await new Promise<string>((resolve) => socket.once("data", (d) => resolve(String(d))));
      socket.destroy();
      expect(echoed).toBe("hi");
      // The refused second listener's liveness probe was a client too.
      expect(peers).toEqual(["unix", "unix"]);
    } finally {
      await listener.close();
    }
    expect(() => statSync(path)).toThrow();
  });
});

describe("startListener (tls)", () => {
  const certs = makeTestCerts(join(dir, "certs"));
  const tls = { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, caFile: certs.caFile };

  it("accepts a client certificate the CA signed and refuses none or a foreign one", async () => {
    const peers: string[] = [];
    const listener = await startListener({ kind: "tcp", host: "127.0.0.1", port: 0 }, { tls, socketMode: 0o600, onClient: echoTo(peers) });
    try {
      expect(listener.address).toMatch(/^tls:127\.0\.0\.1:\d+$/);
      const port = Number(listener.address.split(":").pop());
      const ca = readFileSync(certs.caFile);
      const attempt = (cert?: string, key?: string) =>
        new Promise<string>((resolve) => {
          const socket = tlsConnect({
            host: "127.0.0.1", port, ca, servername: "localhost",
            ...(cert ? { cert: readFileSync(cert), key: readFileSync(key!) } : {}),
          });
          socket.once("secureConnect", () => socket.write("ping"));
          let got = "";
          socket.on("data", (d) => {
            got += d;
            // libvirt's confirmation byte first, then the echo.
            if (got.length < 5) return;
            socket.destroy();
            resolve(`echo:${JSON.stringify(got)}`);
          });
          socket.once("error", (e) => resolve(`error:${e.message}`));
          socket.once("close", () => resolve("closed"));
        });
      expect(await attempt(certs.clientCertFile, certs.clientKeyFile)).toBe(`echo:${JSON.stringify("\u0001ping")}`);
      expect(await attempt()).toMatch(/^(error|closed)/);
      expect(await attempt(certs.rogueCertFile, certs.rogueKeyFile)).toMatch(/^(error|closed)/);
      expect(peers).toEqual([expect.stringMatching(/^127\.0\.0\.1:\d+ CN=client$/)]);
    } finally {
      await listener.close();
    }
  });
});
