/**
 * Remote URIs as libvirt writes them: which transport, which socket or host and port, and the name
 * sent in CONNECT_OPEN (without transport, host and client-side parameters); bad forms are TypeErrors;
 * the transport suffix is what sends a URI to the remote driver.
 */
import { describe, expect, it } from "vitest";
import { connect, createRegistry } from "../../../mod.ts";
import { parseUri } from "../../../core/uri.ts";
import { remoteTarget } from "../../../drivers/remote/uri.ts";
import { registerBuiltins } from "../../../drivers/mod.ts";

const env = { runtimeDir: "/run/user/1000", homeDir: "/home/u", root: false };
const target = (uri: string) => remoteTarget(parseUri(uri), env);

describe("remote URIs", () => {
  it("resolves unix, tcp and tls targets and the name libvirt's client sends", () => {
    expect(target("qemu+unix:///session?socket=/tmp/x/sock")).toEqual({ transport: "unix", socketPath: "/tmp/x/sock", name: "qemu:///session", readOnly: false });
    expect(target("qemu+unix:///session")).toMatchObject({ socketPath: "/run/user/1000/libvirt/libvirt-sock" });
    expect(target("qemu+unix:///system")).toMatchObject({ socketPath: "/var/run/libvirt/libvirt-sock", name: "qemu:///system" });
    expect(target("test+tcp://127.0.0.1:16600/default")).toEqual({ transport: "tcp", host: "127.0.0.1", port: 16600, name: "test:///default", readOnly: false });
    expect(target("qemu+tcp://[::1]/system")).toMatchObject({ host: "::1", port: 16509 });
    expect(target("qemu+tls://host.example/system?pkipath=/etc/pki/x&no_verify=1")).toEqual({
      transport: "tls", host: "host.example", port: 16514, name: "qemu:///system", readOnly: false, verify: false,
      pki: { caFile: "/etc/pki/x/cacert.pem", certFile: "/etc/pki/x/clientcert.pem", keyFile: "/etc/pki/x/clientkey.pem" },
    });
  });

  it("keeps server-side parameters in the name and drops the client's own", () => {
    expect(target("qemu+unix:///session?socket=/s&mode=direct&foo=bar&readonly=1")).toMatchObject({ name: "qemu:///session?foo=bar", readOnly: true });
  });

  it("rejects malformed remote URIs with TypeError", () => {
    expect(() => target("qemu+ssh://host/system")).toThrow(/transport "ssh" is not supported/);
    expect(() => target("qemu+unix://host/session")).toThrow(/takes no host/);
    expect(() => target("qemu+tcp:///session")).toThrow(/needs a host/);
    expect(() => target("qemu+unix:///session?socket=rel/sock")).toThrow(/absolute path/);
  });

  it("sends a URI with a transport to the remote driver, and one without to the scheme's driver", async () => {
    const registry = createRegistry();
    registerBuiltins(registry);
    // Nothing listens there: the remote driver's own connect error proves it was the one asked.
    const error = await connect("test+unix:///default?socket=/nonexistent/vk/sock", { registry }).catch((e: unknown) => e);
    expect((error as { code: string; driver?: string }).code).toBe("connect-failed");
    expect((error as Error).message).toMatch(/nonexistent\/vk\/sock/);
    const local = await connect("test:///default", { registry });
    expect(local.driver).toBe("test");
    await local.close();
  });
});
