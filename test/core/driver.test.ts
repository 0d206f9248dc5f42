import { describe, expect, it } from "vitest";
import { defineHypervisorDriver } from "../../core/driver.ts";
import { defineStorageBackend } from "../../core/storage_backend.ts";
import type { HypervisorConnection } from "../../core/driver.ts";

const open = async (): Promise<HypervisorConnection> => Promise.reject(new Error("not opened here"));

describe("defineHypervisorDriver()", () => {
  it("tags kind, copies the schemes and freezes the result", () => {
    const schemes = ["qemu", "kvm"];
    const def = defineHypervisorDriver({ name: "qemu", schemes, open });
    expect(def).toEqual({ kind: "hypervisor", name: "qemu", schemes: ["qemu", "kvm"], open });
    expect(Object.isFrozen(def)).toBe(true);
    expect(Object.isFrozen(def.schemes)).toBe(true);
    schemes.push("xen");
    expect(def.schemes).toEqual(["qemu", "kvm"]);
  });

  it.each([
    { what: "an empty name", def: { name: "", schemes: ["x"], open } },
    { what: "an upper-case name", def: { name: "Qemu", schemes: ["qemu"], open } },
    { what: "a name starting with a digit", def: { name: "9p", schemes: ["ninep"], open } },
    { what: "a name with a slash", def: { name: "a/b", schemes: ["ab"], open } },
    { what: "no schemes", def: { name: "qemu", schemes: [], open } },
    { what: "schemes that are not an array", def: { name: "qemu", schemes: "qemu", open } },
    { what: "a scheme with +", def: { name: "qemu", schemes: ["qemu+tls"], open } },
    { what: "an upper-case scheme", def: { name: "qemu", schemes: ["QEMU"], open } },
    { what: "a repeated scheme", def: { name: "qemu", schemes: ["qemu", "qemu"], open } },
    { what: "no open", def: { name: "qemu", schemes: ["qemu"] } },
    { what: "null", def: null },
  ])("throws TypeError for $what", ({ def }) => {
    expect(() => defineHypervisorDriver(def as never)).toThrow(TypeError);
  });

  it("names the driver in the message", () => {
    expect(() => defineHypervisorDriver({ name: "qemu", schemes: ["qemu+tls"], open }))
      .toThrow('Invalid hypervisor driver "qemu": scheme "qemu+tls"');
  });
});

describe("defineStorageBackend()", () => {
  it("tags kind, keeps validate and freezes the result", () => {
    const validate = () => {};
    const def = defineStorageBackend({ name: "dir", validate, open: async () => Promise.reject(new Error("x")) });
    expect(def.kind).toBe("storage");
    expect(def.name).toBe("dir");
    expect(def.validate).toBe(validate);
    expect(Object.isFrozen(def)).toBe(true);
    expect("validate" in defineStorageBackend({ name: "dir", open: def.open })).toBe(false);
  });

  it.each([
    { what: "a bad name", def: { name: "my_dir", open } },
    { what: "no open", def: { name: "dir" } },
    { what: "a validate that is no function", def: { name: "dir", validate: true, open } },
  ])("throws TypeError for $what", ({ def }) => {
    expect(() => defineStorageBackend(def as never)).toThrow(TypeError);
  });
});
