import { describe, expect, it } from "vitest";
import { DEFAULT_ALLOWED_URIS, parseDaemonArgs, parseListen } from "../../daemon/options.ts";

describe("parseDaemonArgs", () => {
  it("reads listeners, TLS files, state dir and allowed URIs", () => {
    const options = parseDaemonArgs([
      "--listen", "unix:/tmp/a.sock",
      "--listen", "tcp:127.0.0.1:16514",
      "--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem",
      "--state-dir", "/tmp/state",
      "--allow", "test:///default", "--allow", "qemu:///session",
    ]);
    expect(options).toEqual({
      listen: [{ kind: "unix", path: "/tmp/a.sock" }, { kind: "tcp", host: "127.0.0.1", port: 16514 }],
      tls: { certFile: "c.pem", keyFile: "k.pem", caFile: "ca.pem" },
      insecureTcp: false,
      stateDir: "/tmp/state",
      allow: ["test:///default", "qemu:///session"],
      socketMode: 0o600,
    });
  });

  it("defaults to test:///default and qemu:///session, socket mode 0600", () => {
    const options = parseDaemonArgs(["--listen", "unix:/tmp/a.sock"]);
    expect(options !== "help" && options.allow).toEqual(DEFAULT_ALLOWED_URIS);
    expect(options !== "help" && options.socketMode).toBe(0o600);
  });

  it("refuses TCP without TLS, and --insecure-tcp off loopback", () => {
    expect(() => parseDaemonArgs(["--listen", "tcp:127.0.0.1:1"])).toThrow(/needs --tls-cert, --tls-key and --tls-ca/);
    expect(() => parseDaemonArgs(["--listen", "tcp:0.0.0.0:1", "--insecure-tcp"])).toThrow(/only to loopback/);
    const ok = parseDaemonArgs(["--listen", "tcp:[::1]:0", "--insecure-tcp"]);
    expect(ok !== "help" && ok.insecureTcp).toBe(true);
  });

  it("refuses unknown options, stray words, partial TLS and missing listeners", () => {
    expect(() => parseDaemonArgs(["--listen", "unix:/a", "--bogus"])).toThrow(TypeError);
    expect(() => parseDaemonArgs(["--listen", "unix:/a", "extra"])).toThrow(/Unexpected argument "extra"/);
    expect(() => parseDaemonArgs(["--listen", "unix:/a", "--tls-cert", "c.pem"])).toThrow(/go together/);
    expect(() => parseDaemonArgs([])).toThrow(/at least one --listen/);
    expect(() => parseDaemonArgs(["--listen", "unix:/a", "--allow", "nonsense"])).toThrow(/is not a URI/);
    expect(() => parseDaemonArgs(["--listen", "unix:/a", "--socket-mode", "999"])).toThrow(/octal/);
    expect(parseDaemonArgs(["--help"])).toBe("help");
    expect(() => parseDaemonArgs(["--listen", "unix:/a", "--max-client-backlog", "1K"])).toThrow(/at least 64K/);
    const ok = parseDaemonArgs(["--listen", "unix:/a", "--max-client-backlog", "1M"]);
    expect(ok !== "help" && ok.maxClientBacklogBytes).toBe(1024 * 1024);
  });
});

describe("parseListen", () => {
  it("parses unix and tcp forms and rejects the rest", () => {
    expect(parseListen("unix:/run/x.sock")).toEqual({ kind: "unix", path: "/run/x.sock" });
    expect(parseListen("tcp:localhost:0")).toEqual({ kind: "tcp", host: "localhost", port: 0 });
    expect(() => parseListen("tcp:127.0.0.1:70000")).toThrow(/out of range/);
    expect(() => parseListen("unix:")).toThrow(/empty/);
    expect(() => parseListen("udp:1.2.3.4:5")).toThrow(/expected unix:PATH or tcp:HOST:PORT/);
  });
});
