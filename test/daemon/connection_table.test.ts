import { describe, expect, it } from "vitest";
import type { Connection } from "../../core/connection.ts";
import { ConnectError } from "../../core/errors.ts";
import { createConnectionTable, normalizeUri } from "../../daemon/connection_table.ts";
import { connect } from "../../mod.ts";

describe("createConnectionTable", () => {
  it("opens a URI once and shares it between concurrent callers", async () => {
    let opens = 0;
    const table = createConnectionTable({
      allow: ["test:///default"],
      open: (uri, options) => {
        opens++;
        return connect(uri, options);
      },
    });
    try {
      const [a, b, c] = await Promise.all([
        table.acquire("test:///default"),
        table.acquire("test+unix:///default?socket=/tmp/s"),
        table.acquire("TEST:///default"),
      ]);
      expect(opens).toBe(1);
      expect(a).toBe(b);
      expect(b).toBe(c);
      expect(table.openUris()).toEqual(["test:///default"]);
      // What one client does, the next sees: it is the same connection.
      await (await a.domains.get("test")).suspend();
      expect((await (await b.domains.get("test")).info()).state).toBe("paused");
    } finally {
      await table.close();
    }
  });

  it("refuses URIs that are not allowed, and forgets a failed open", async () => {
    let attempts = 0;
    const table = createConnectionTable({
      allow: ["test:///default"],
      open: (uri) => {
        attempts++;
        return attempts === 1 ? Promise.reject(new ConnectError("boom")) : connect(uri);
      },
    });
    await expect(table.acquire("test:///empty")).rejects.toThrow(/No connection driver available for "test:\/\/\/empty"/);
    await expect(table.acquire("not a uri")).rejects.toThrow(TypeError);
    await expect(table.acquire("test:///default")).rejects.toThrow("boom");
    const conn: Connection = await table.acquire("test:///default");
    expect(attempts).toBe(2);
    await table.close();
    await expect(table.acquire("test:///default")).rejects.toThrow(/stopping/);
    await expect(conn.domains.list()).rejects.toThrow();
  });
});

describe("normalizeUri", () => {
  it("drops the transport and the daemon-addressing parameters, keeps the driver's", () => {
    expect(normalizeUri("qemu+tls://host/session?pkipath=/x&stateDir=/s")).toBe("qemu:///session?stateDir=%2Fs");
    expect(normalizeUri("Test:///default")).toBe("test:///default");
  });
});
