/**
 * libvirt domain XML (formatdomain) to a {@linkcode DomainConfig} and back.
 *
 * Written: `<domain type=kvm|qemu|test>` with `name`, `uuid`, `memory` (KiB when whole, else bytes),
 * `vcpu`, `os/type` (`hvm`, `x86_64`, the machine), the disks, and what virtkit's QEMU command line
 * really has: no USB controller, no memory balloon, no video (`-nodefaults`), which is also what makes a
 * stock libvirtd define it without adding them.
 *
 * Read: the same, and libvirt's own defaults for what virtkit does anyway are accepted without a
 * warning (run-time ids, `currentMemory` equal to `memory`, static vCPU placement, boot from disk, UTC
 * clock, destroy/restart/destroy lifecycle, QEMU's default `qemu64` CPU, ACPI/APIC, the emulator path,
 * bus controllers, PS/2 input, `none` audio/video/balloon). Anything else (graphics, interfaces,
 * consoles, other devices and settings) is reported as an {@linkcode XmlWarning} and dropped, or is an
 * error with `strict: true`.
 *
 * @module
 */
import type { BackingLayer, DomainConfig } from "../domain.ts";
import { checkDomainConfig } from "../config/domain_config.ts";
import { ElementReader, settleWarnings, type XmlParseOptions, type XmlParseResult, type XmlWarning } from "./element_reader.ts";
import { diskFromXml, diskToXml } from "./disk_xml.ts";
import { buildXml, parseXmlDocument, type XmlNodeSpec } from "./xml_document.ts";

const WHAT = "domain XML";

/** Options of {@linkcode domainToXml}. */
export interface DomainXmlOptions {
  /** libvirt's domain `type`: `"kvm"` (default), `"qemu"` (TCG, where /dev/kvm is not usable) or `"test"`. */
  hypervisor?: "kvm" | "qemu" | "test";
  /**
   * A running domain's backing chains by disk target (`dom.disks()`), written as libvirt's live XML
   * writes them (nested `<backingStore>` elements), so clients that read the live XML (virsh, the remote
   * driver's `disks()`) see the chain. Absent: the definition only, as `--inactive` shows it.
   */
  backingChains?: Readonly<Record<string, readonly BackingLayer[]>>;
}

/**
 * Writes a domain config as libvirt domain XML that `virsh define` accepts.
 *
 * @param config The domain (checked first, as `define()` checks it).
 * @param options The libvirt hypervisor type.
 * @returns The XML text.
 * @throws {TypeError} For an invalid config.
 * @example
 * ```ts
 * import { domainFromXml, domainToXml } from "virtkit";
 * const xml = domainToXml({ name: "web1", uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f", vcpus: 2,
 *   memoryBytes: 64 * 2 ** 20, machine: "q35", disks: [{ target: "vda", path: "/i/web1.qcow2", format: "qcow2" }] });
 * const { config, warnings } = domainFromXml(xml);
 * if (config.disks[0]?.path !== "/i/web1.qcow2" || config.vcpus !== 2 || warnings.length !== 0) throw new Error(xml);
 * ```
 * @example The live XML of a running domain, with its disks' backing chains
 * ```ts
 * import { disksFromDomainXml, domainToXml } from "virtkit";
 * const config = { name: "web1", vcpus: 1, memoryBytes: 2 ** 26, disks: [{ target: "vda", path: "/i/top.qcow2", format: "qcow2" }] };
 * const xml = domainToXml(config, { backingChains: { vda: [{ path: "/i/base.raw", format: "raw" }] } });
 * const [vda] = disksFromDomainXml(xml);
 * if (vda?.backingChain.length !== 1 || vda.backingChain[0]?.path !== "/i/base.raw") throw new Error(xml);
 * ```
 */
export function domainToXml(config: DomainConfig, options: DomainXmlOptions = {}): string {
  const c = checkDomainConfig(config);
  const hypervisor = options.hypervisor ?? "kvm";
  if (!["kvm", "qemu", "test"].includes(hypervisor)) {
    throw new TypeError(`Invalid domain XML options: hypervisor ${JSON.stringify(hypervisor)} is not "kvm", "qemu" or "test"`);
  }
  const kib = c.memoryBytes % 1024 === 0;
  const children: XmlNodeSpec[] = [
    { name: "name", text: c.name },
    { name: "uuid", text: c.uuid! },
    { name: "memory", attributes: { unit: kib ? "KiB" : "bytes" }, text: kib ? c.memoryBytes / 1024 : c.memoryBytes },
    { name: "vcpu", text: c.vcpus },
    { name: "os", children: [{ name: "type", attributes: { arch: "x86_64", machine: c.machine }, text: "hvm" }] },
    {
      name: "devices",
      children: [
        ...c.disks.map((disk) => withChain(diskToXml(disk), options.backingChains?.[disk.target])),
        { name: "controller", attributes: { type: "usb", model: "none" } },
        { name: "video", children: [{ name: "model", attributes: { type: "none" } }] },
        { name: "memballoon", attributes: { model: "none" } },
      ],
    },
  ];
  return buildXml({ name: "domain", attributes: { type: hypervisor }, children });
}

/** A disk element with its chain as nested `<backingStore>` elements (the last one empty: the chain ends). */
function withChain(disk: XmlNodeSpec, chain: readonly BackingLayer[] | undefined): XmlNodeSpec {
  if (chain === undefined) return disk;
  let store: XmlNodeSpec = { name: "backingStore" };
  for (const layer of [...chain].reverse()) {
    store = {
      name: "backingStore",
      attributes: { type: "file" },
      children: [{ name: "format", attributes: { type: layer.format } }, { name: "source", attributes: { file: layer.path } }, store],
    };
  }
  return { ...disk, children: [...(disk.children ?? []), store] };
}

/**
 * Reads libvirt domain XML (`virsh dumpxml`, live or `--inactive`) into a checked config.
 *
 * @param xml The document.
 * @param options `strict: true` turns every warning into a `TypeError`.
 * @returns The config and what was dropped.
 * @throws {TypeError} For malformed XML, a missing name/memory/vcpu, a disk without a target, an unknown
 *   unit, a config the schema rejects, or (strict) anything not modeled.
 * @example
 * ```ts
 * import { domainFromXml } from "virtkit";
 * const { config, warnings } = domainFromXml(`<domain type='kvm'><name>a</name><memory unit='MiB'>64</memory>
 *   <vcpu>1</vcpu><devices><graphics type='vnc'/></devices></domain>`);
 * if (config.memoryBytes !== 64 * 2 ** 20 || warnings[0]?.path !== "devices/graphics") throw new Error("unexpected");
 * ```
 */
export function domainFromXml(xml: string, options?: XmlParseOptions): XmlParseResult<DomainConfig> {
  const warnings: XmlWarning[] = [];
  const root = new ElementReader(parseXmlDocument(xml, WHAT), "", WHAT, warnings);
  if (root.element.name !== "domain") throw root.error(`is <${root.element.name}>, expected <domain>`);
  // type is the hypervisor, chosen by the connection; id is the run-time number of a running domain.
  root.ignoreAttrs("type", "id");
  const name = root.childText("name");
  if (name === undefined) throw root.error("has no <name>");
  const memory = root.child("memory");
  if (memory === undefined) throw root.error("has no <memory>");
  const memoryBytes = memory.bytes("KiB");
  const current = root.child("currentMemory");
  if (current !== undefined && current.bytes("KiB") !== memoryBytes) {
    root.warn(current.path, "a balloon target below <memory> is not modeled (virtkit has no balloon); dropped");
  }
  const vcpu = root.child("vcpu");
  if (vcpu === undefined) throw root.error("has no <vcpu>");
  const placement = vcpu.attr("placement");
  if (placement !== undefined && placement !== "static") vcpu.warn(`${vcpu.path}@placement`, `placement "${placement}" is not modeled; dropped`);
  const vcpus = vcpu.integer("a whole number of vCPUs");
  const machine = readOs(root);
  readDefaults(root);
  const disks = (root.child("devices") ? readDevices(root.child("devices")!) : []);
  const uuid = root.childText("uuid")?.trim();
  root.finish();
  const config = checkDomainConfig({
    name,
    ...(uuid === undefined ? {} : { uuid }),
    vcpus,
    memoryBytes,
    ...(machine === undefined ? {} : { machine }),
    disks,
  });
  return { config, warnings: settleWarnings(warnings, WHAT, options) };
}

function readOs(root: ElementReader): string | undefined {
  const os = root.child("os");
  if (os === undefined) return undefined;
  const type = os.child("type");
  let machine: string | undefined;
  if (type !== undefined) {
    machine = type.attr("machine");
    const arch = type.attr("arch");
    if (arch !== undefined && arch !== "x86_64") type.warn(`${type.path}@arch`, `arch "${arch}" is not modeled: virtkit runs qemu-system-x86_64`);
    if (type.text() !== "hvm") type.warn(type.path, `OS type "${type.text()}" is not modeled: virtkit runs hvm guests`);
    type.finish();
  }
  for (const boot of os.children("boot")) {
    // Booting from the first disk is what QEMU does with no other boot device.
    if (boot.attr("dev") === "hd") boot.finish();
    else boot.warn(boot.path, `boot from "${boot.attr("dev")}" is not modeled; dropped`);
  }
  os.finish();
  return machine;
}

/** Settings whose libvirt default is what virtkit's QEMU command line does anyway. */
const DEFAULT_TEXT: Record<string, string> = { on_poweroff: "destroy", on_reboot: "restart", on_crash: "destroy" };

function readDefaults(root: ElementReader): void {
  for (const [name, value] of Object.entries(DEFAULT_TEXT)) {
    const text = root.childText(name)?.trim();
    if (text !== undefined && text !== value) root.warn(name, `"${text}" is not modeled (virtkit does "${value}"); dropped`);
  }
  const clock = root.child("clock");
  if (clock !== undefined) {
    if (clock.attr("offset") === "utc" && clock.element.children.length === 0) clock.finish();
    else root.warn(clock.path, "a clock other than plain UTC is not modeled; dropped");
  }
  const cpu = root.child("cpu");
  if (cpu !== undefined) {
    // libvirt writes QEMU's own default CPU (qemu64, TCG) this way; virtkit passes no -cpu, which is the same.
    const model = cpu.element.children.find((c) => c.name === "model")?.text.trim();
    const plain = cpu.attr("mode") === "custom" && model === "qemu64";
    if (!plain) root.warn(cpu.path, "a CPU model or topology is not modeled (virtkit runs QEMU's default CPU); dropped");
  }
  const features = root.child("features");
  if (features !== undefined) {
    // ACPI and the APIC are on by default on QEMU's x86 machines.
    features.ignoreChildren(["acpi", "apic"], "QEMU defaults");
    features.finish();
  }
}

/** Device kinds libvirt adds on its own whose default virtkit's machine has anyway. */
function readDevices(devices: ElementReader): DomainConfig["disks"] {
  // The emulator is virtkit's own qemu-system-x86_64.
  devices.ignoreChildren(["emulator"], "virtkit picks its emulator");
  for (const controller of devices.children("controller")) {
    const type = controller.attr("type");
    const implied = type === "pci" || type === "sata" || type === "ide" || (type === "usb" && controller.attr("model") === "none");
    if (implied) controller.ignoreChildren(["model", "target", "address", "alias"], "buses the machine type brings");
    controller.ignoreAttrs("index", "model", "ports");
    if (implied) controller.finish();
    else controller.warn(controller.path, `a ${type} controller is not modeled (virtkit's machine has only its built-in buses); dropped`);
  }
  for (const input of devices.children("input")) {
    if (input.attr("bus") === "ps2") {
      input.ignoreChildren(["alias", "address"], "run-time");
      input.ignoreAttrs("type");
      input.finish();
    } else input.warn(input.path, `a ${input.attr("type")} input on bus ${input.attr("bus")} is not modeled; dropped`);
  }
  const noneModel = (name: string, read: (r: ElementReader) => string | undefined) => {
    for (const device of devices.children(name)) {
      if (read(device) === "none") {
        device.ignoreChildren(["model", "alias", "address"], "none");
        device.ignoreAttrs("id", "type", "model");
        device.finish();
      } else device.warn(device.path, `<${name}> is not modeled (virtkit runs QEMU with -nodefaults); dropped`);
    }
  };
  noneModel("audio", (r) => r.attr("type"));
  noneModel("memballoon", (r) => r.attr("model"));
  noneModel("video", (r) => r.element.children.find((c) => c.name === "model")?.attributes.type);
  const disks = devices.children("disk").flatMap((disk) => {
    const read = diskFromXml(disk);
    return read === undefined ? [] : [read.config];
  });
  devices.finish();
  return disks;
}
