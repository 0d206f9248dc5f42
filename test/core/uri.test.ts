import { describe, expect, it } from "vitest";
import { parseUri } from "../../core/uri.ts";

describe("parseUri()", () => {
  it("reads a local URI with an empty host", () => {
    const uri = parseUri("test:///default");
    expect(uri).toMatchObject({ href: "test:///default", scheme: "test", host: "", path: "/default" });
    expect(uri.transport).toBeUndefined();
    expect(uri.user).toBeUndefined();
    expect(uri.port).toBeUndefined();
    expect(uri.params.size).toBe(0);
  });

  it("reads query parameters and percent-decodes them", () => {
    const uri = parseUri("qemu:///session?stateDir=%2Ftmp%2Fmy%20vms&debug&mode=a+b");
    expect(uri.path).toBe("/session");
    expect(uri.params.get("stateDir")).toBe("/tmp/my vms");
    expect(uri.params.get("debug")).toBe("");
    expect(uri.params.get("mode")).toBe("a+b"); // RFC 3986: + is not a space
    expect([...uri.params.keys()]).toEqual(["stateDir", "debug", "mode"]);
  });

  it("reads the transport, user, host and port", () => {
    const uri = parseUri("QEMU+TLS://admin%40corp@Host-1.example:16514/system");
    expect(uri).toMatchObject({
      scheme: "qemu",
      transport: "tls",
      user: "admin@corp",
      host: "Host-1.example",
      port: 16514,
      path: "/system",
    });
  });

  it("keeps an IPv6 host in brackets and reads its port", () => {
    expect(parseUri("qemu+ssh://[::1]/system").host).toBe("[::1]");
    expect(parseUri("qemu+ssh://[fe80::1]:2222/system")).toMatchObject({ host: "[fe80::1]", port: 2222 });
  });

  it("percent-decodes the path and allows a nested URI in it", () => {
    expect(parseUri("test:///my%20vm").path).toBe("/my vm");
    expect(parseUri("virtkit+tls://host/qemu:///system").path).toBe("/qemu:///system");
  });

  it("gives an empty path when there is none", () => {
    expect(parseUri("qemu://host").path).toBe("");
    expect(parseUri("qemu://host?x=1")).toMatchObject({ path: "", host: "host" });
    expect(parseUri("qemu://host?x=1").params.get("x")).toBe("1");
  });

  it("tolerates empty pairs in the query", () => {
    expect([...parseUri("test:///default?a=1&&b=2&").params]).toEqual([["a", "1"], ["b", "2"]]);
  });

  it("returns a frozen object", () => {
    expect(Object.isFrozen(parseUri("test:///default"))).toBe(true);
  });

  it.each([
    { text: "", message: /empty/ },
    { text: "default", message: /no scheme/ },
    { text: ":///default", message: /no scheme/ },
    { text: "1qemu:///system", message: /scheme "1qemu"/ },
    { text: "qe_mu:///system", message: /scheme "qe_mu"/ },
    { text: "qemu+:///system", message: /scheme "qemu\+"/ },
    { text: "qemu+tls+ssh://host/system", message: /scheme/ },
    { text: "test:/default", message: /"\/\/" must follow "test:"/ },
    { text: "test:default", message: /"\/\/" must follow/ },
    { text: "test:///de\u0000fault", message: /control character/ },
    { text: "test:///default\n", message: /control character/ },
    { text: "test:///my vm", message: /white space/ },
    { text: "test:///caf\u00e9", message: /percent-encoded/ },
    { text: "test:///default#frag", message: /fragments/ },
    { text: "test:///a%zz", message: /"%" not followed by two hex digits/ },
    { text: "test:///a%4", message: /"%" not followed by two hex digits/ },
    { text: "test:///a%ff", message: /invalid UTF-8/ },
    { text: "test:///a%00b", message: /decodes to a control character/ },
    { text: "test:///x?a=%0a", message: /decodes to a control character/ },
    { text: "test:///x?=1", message: /has no name/ },
    { text: "test:///x?a=1&a=2", message: /"a" is given twice/ },
    { text: "qemu://host:0/system", message: /port "0"/ },
    { text: "qemu://host:70000/system", message: /port "70000"/ },
    { text: "qemu://host:/system", message: /port ""/ },
    { text: "qemu://ho!st/system", message: /host "ho!st"/ },
    { text: "qemu://@host/system", message: /user ""/ },
  ])("throws TypeError for $text", ({ text, message }) => {
    expect(() => parseUri(text)).toThrow(TypeError);
    expect(() => parseUri(text)).toThrow(message);
  });

  it("names the URI in the message", () => {
    expect(() => parseUri("test:default")).toThrow('Invalid connection URI "test:default"');
  });

  it("throws TypeError for a non-string", () => {
    expect(() => parseUri(42 as unknown as string)).toThrow(/expected a string, got number/);
    expect(() => parseUri(undefined as unknown as string)).toThrow(TypeError);
  });
});
