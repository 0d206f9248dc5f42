/**
 * The QEMU command line of a domain.
 *
 * Machine choice: without `machine` the domain gets `q35` (the schema's default, libvirt's for x86_64),
 * a machine a guest boots on: every disk is attached to the guest as a device (`virtio-blk-pci` for a
 * `vdX` target, as libvirt attaches it) and `-smp` carries the vCPUs. `machine: "none"` is QEMU's machine
 * without firmware, guest devices or more than one vCPU: the disks live only as `-blockdev` nodes that
 * block jobs work on, and a domain without a guest OS costs no CPU (block-job-only uses and tests).
 *
 * @module
 */
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { DEFAULT_MACHINE } from "../../core/config/domain_config.ts";
import type { DomainConfig } from "../../core/domain.ts";
import { UnsupportedError } from "../../core/errors.ts";
import { protocolBlockdev } from "./blockdev_source.ts";
import { secretObjectArg } from "./secret_file.ts";
import type { RunDisk } from "./state_store.ts";

/** The emulator the driver runs. */
export const QEMU_BINARY = "qemu-system-x86_64";

/**
 * Whether KVM can be used here (`/dev/kvm` opens read-write).
 *
 * @returns `"kvm"` or `"tcg"`.
 * @example
 * ```ts
 * import { pickAccelerator } from "./command_line.ts";
 * if (!["kvm", "tcg"].includes(await pickAccelerator())) throw new Error("unexpected");
 * ```
 */
export async function pickAccelerator(): Promise<"kvm" | "tcg"> {
  try {
    await access("/dev/kvm", constants.R_OK | constants.W_OK);
    return "kvm";
  } catch {
    return "tcg";
  }
}

/** Where a domain's QEMU talks and writes. */
export interface LaunchPaths {
  /** QMP socket path. */
  readonly socket: string;
  /** The 0600 file holding each CHAP layer's password, by the layer's secret id (`layer.auth.secret`). */
  readonly secretFiles?: ReadonlyMap<string, string>;
}

/**
 * Builds the arguments (after the binary) for a domain. The domain starts with its vCPUs stopped
 * (`-S`): the driver wires its event listeners first and then sends `cont`.
 *
 * @param config The domain.
 * @param disks Its disks, resolved to node-named chains.
 * @param paths Socket path, and the secret files of CHAP-protected LUN layers.
 * @param accel Accelerator.
 * @returns The argument list.
 * @throws {UnsupportedError} For a disk whose target is not `vdX` on a machine with devices (this driver
 *   attaches disks as virtio only).
 * @example
 * ```ts
 * import { buildQemuArgs } from "./command_line.ts";
 * const args = buildQemuArgs({ name: "a", vcpus: 2, memoryBytes: 64 << 20, disks: [] }, [], { socket: "/tmp/a.qmp" }, "tcg");
 * if (!args.includes("-nodefaults") || args[args.indexOf("-machine") + 1] !== "q35" || args[args.indexOf("-smp") + 1] !== "2") {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function buildQemuArgs(config: DomainConfig, disks: readonly RunDisk[], paths: LaunchPaths, accel: "kvm" | "tcg"): string[] {
  const machine = config.machine ?? DEFAULT_MACHINE;
  const args = [
    "-nodefaults",
    "-no-user-config",
    "-nographic",
    "-display",
    "none",
    "-name",
    `guest=${config.name.replaceAll(",", ",,")}`,
    "-machine",
    machine,
    "-accel",
    accel,
    "-m",
    `${Math.max(1, Math.ceil(config.memoryBytes / (1 << 20)))}M`,
    ...(machine === "none" ? [] : ["-smp", String(config.vcpus)]),
    "-qmp",
    `unix:${paths.socket},server=on,wait=off`,
    "-S",
  ];
  const readonlyOf = new Map(config.disks.map((d) => [d.target, d.readonly === true]));
  for (const disk of disks) {
    const ro = readonlyOf.get(disk.target) ?? false;
    // Bottom first: each format node names its backing node, which must already exist.
    for (let i = disk.layers.length - 1; i >= 0; i--) {
      const layer = disk.layers[i]!;
      const below = disk.layers[i + 1];
      if (layer.auth) {
        const file = paths.secretFiles?.get(layer.auth.secret);
        if (file === undefined) throw new TypeError(`No secret file for CHAP layer "${layer.fileNode}" (secret "${layer.auth.secret}")`);
        // The password reaches QEMU through a file, never argv (ps shows argv to every user).
        args.push("-object", secretObjectArg(layer.auth.secret, file));
      }
      args.push("-blockdev", JSON.stringify(protocolBlockdev(layer.path, layer.fileNode, i > 0 || ro, layer.auth)));
      const format: Record<string, unknown> = { driver: layer.format, file: layer.fileNode, "node-name": layer.node, "read-only": i > 0 || ro };
      if (layer.format === "qcow2" || layer.format === "qed") format.backing = below ? below.node : null;
      args.push("-blockdev", JSON.stringify(format));
    }
    if (machine !== "none") args.push("-device", guestDevice(disk, config.name));
  }
  return args;
}

/** The guest device of a disk: virtio-blk for `vdX`, as libvirt attaches it on x86 machines. */
function guestDevice(disk: RunDisk, domain: string): string {
  if (!disk.target.startsWith("vd")) {
    throw new UnsupportedError("attach disk", {
      driver: "qemu",
      detail: `disk "${disk.target}" of domain "${domain}": the qemu driver attaches vdX targets (virtio-blk); use machine "none" to keep it a block node only`,
    });
  }
  return `virtio-blk-pci,drive=${disk.layers[0]!.node},id=${disk.target}`;
}
