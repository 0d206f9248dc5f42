/** The QEMU command line built from a domain definition (no QEMU needed). */
import { describe, expect, it } from "vitest";
import { checkDomainConfig } from "../../../core/config/domain_config.ts";
import { UnsupportedError } from "../../../core/errors.ts";
import { buildQemuArgs } from "../../../drivers/qemu/command_line.ts";
import type { RunDisk } from "../../../drivers/qemu/state_store.ts";

const MiB = 1024 * 1024;
const chain: RunDisk = {
  target: "vda",
  layers: [
    { path: "/i/top.qcow2", format: "qcow2", virtualBytes: MiB, node: "vda-0", fileNode: "vda-0-file" },
    { path: "/i/base.raw", format: "raw", virtualBytes: MiB, node: "vda-1", fileNode: "vda-1-file" },
  ],
};
const blockdevs = (args: string[]) => args.flatMap((a, i) => (args[i - 1] === "-blockdev" ? [JSON.parse(a) as Record<string, unknown>] : []));

describe("qemu command line", () => {
  it("machine none: no -smp and no devices, stopped (-S), with the QMP socket", () => {
    const args = buildQemuArgs({ name: "a,b", vcpus: 1, memoryBytes: 100 * MiB + 1, machine: "none", disks: [] }, [], { socket: "/run/x.qmp" }, "kvm");
    expect(args).toEqual([
      "-nodefaults", "-no-user-config", "-nographic", "-display", "none", "-name", "guest=a,,b",
      "-machine", "none", "-accel", "kvm", "-m", "101M", "-qmp", "unix:/run/x.qmp,server=on,wait=off", "-S",
    ]);
  });

  it("without a machine: q35 (the schema's default), -smp vcpus and a virtio-blk-pci device per disk", () => {
    const config = checkDomainConfig({ name: "d", vcpus: 3, memoryBytes: 64 * MiB, disks: [{ target: "vda", path: "/i/top.qcow2" }] });
    const args = buildQemuArgs(config, [chain], { socket: "/s" }, "tcg");
    expect(args.slice(args.indexOf("-machine"), args.indexOf("-machine") + 2)).toEqual(["-machine", "q35"]);
    expect(args.slice(args.indexOf("-smp"), args.indexOf("-smp") + 2)).toEqual(["-smp", "3"]);
    expect(args.slice(-2)).toEqual(["-device", "virtio-blk-pci,drive=vda-0,id=vda"]);
    // The same config unchecked (a driver handed it directly) gets the same default.
    expect(buildQemuArgs({ ...config, machine: undefined }, [chain], { socket: "/s" }, "tcg")).toEqual(args);
  });

  it("a target other than vdX on a machine with devices is an UnsupportedError; on machine none it is a node only", () => {
    const sda: RunDisk = { target: "sda", layers: chain.layers };
    const config = { name: "d", vcpus: 1, memoryBytes: 64 * MiB, disks: [{ target: "sda", path: "/i/top.qcow2" }] };
    expect(() => buildQemuArgs(config, [sda], { socket: "/s" }, "tcg")).toThrow(UnsupportedError);
    expect(buildQemuArgs({ ...config, machine: "none" }, [sda], { socket: "/s" }, "tcg")).not.toContain("-device");
  });

  it("names every node of a chain, bottom first, backing layers read-only, top linked to its backing", () => {
    const config = { name: "d", vcpus: 1, memoryBytes: 64 * MiB, machine: "none", disks: [{ target: "vda", path: "/i/top.qcow2" }] };
    const nodes = blockdevs(buildQemuArgs(config, [chain], { socket: "/s" }, "tcg"));
    expect(nodes).toEqual([
      { driver: "file", filename: "/i/base.raw", "node-name": "vda-1-file", "read-only": true },
      { driver: "raw", file: "vda-1-file", "node-name": "vda-1", "read-only": true },
      { driver: "file", filename: "/i/top.qcow2", "node-name": "vda-0-file", "read-only": false },
      { driver: "qcow2", file: "vda-0-file", "node-name": "vda-0", "read-only": false, backing: "vda-1" },
    ]);
  });

  it("a standalone qcow2 gets backing null (no probing); a readonly disk is read-only throughout", () => {
    const alone: RunDisk = { target: "vdb", layers: [chain.layers[0]!] };
    const config = { name: "d", vcpus: 1, memoryBytes: 64 * MiB, disks: [{ target: "vdb", path: "/i/top.qcow2", readonly: true }] };
    const nodes = blockdevs(buildQemuArgs(config, [alone], { socket: "/s" }, "tcg"));
    expect(nodes[1]).toEqual({ driver: "qcow2", file: "vda-0-file", "node-name": "vda-0", "read-only": true, backing: null });
  });

  it("a real machine type gets -smp and a virtio-blk-pci device per disk", () => {
    const config = { name: "d", vcpus: 2, memoryBytes: 64 * MiB, machine: "q35", disks: [{ target: "vda", path: "/i/top.qcow2" }] };
    const args = buildQemuArgs(config, [chain], { socket: "/s" }, "tcg");
    expect(args.slice(args.indexOf("-smp"), args.indexOf("-smp") + 2)).toEqual(["-smp", "2"]);
    expect(args.slice(-2)).toEqual(["-device", "virtio-blk-pci,drive=vda-0,id=vda"]);
  });

  it("a CHAP LUN layer gets a secret object read from its file, made before the node that names it", () => {
    const lun = "iscsi://127.0.0.1:3261/iqn.2026-12.test:t/1";
    const disk: RunDisk = {
      target: "vda",
      layers: [chain.layers[0]!, { path: lun, format: "raw", virtualBytes: MiB, node: "vda-1", fileNode: "vda-1-file", auth: { username: "alice", secret: "vda-1-secret" } }],
    };
    const config = { name: "d", vcpus: 1, memoryBytes: 64 * MiB, machine: "none", disks: [{ target: "vda", path: "/i/top.qcow2" }] };
    const args = buildQemuArgs(config, [disk], { socket: "/s", secretFiles: new Map([["vda-1-secret", "/run/s.vda-1-secret.secret"]]) }, "tcg");
    const object = args.indexOf("-object");
    expect(args[object + 1]).toBe("secret,id=vda-1-secret,file=/run/s.vda-1-secret.secret,format=raw");
    expect(object).toBeLessThan(args.indexOf("-blockdev"));
    expect(blockdevs(args)[0]).toEqual({
      driver: "iscsi", transport: "tcp", portal: "127.0.0.1:3261", target: "iqn.2026-12.test:t", lun: 1,
      user: "alice", "password-secret": "vda-1-secret", "node-name": "vda-1-file", "read-only": true,
    });
    expect(() => buildQemuArgs(config, [disk], { socket: "/s" }, "tcg")).toThrow('No secret file for CHAP layer "vda-1-file"');
  });

  it("an iscsi:// URL carrying user%password is refused: it would show in ps", () => {
    const disk: RunDisk = { target: "vda", layers: [{ path: "iscsi://alice%pw@127.0.0.1/iqn.2026-12.test:t/1", format: "raw", virtualBytes: MiB, node: "vda-0", fileNode: "vda-0-file" }] };
    const config = { name: "d", vcpus: 1, memoryBytes: 64 * MiB, machine: "none", disks: [{ target: "vda", path: disk.layers[0]!.path }] };
    expect(() => buildQemuArgs(config, [disk], { socket: "/s" }, "tcg")).toThrow(UnsupportedError);
  });
});
