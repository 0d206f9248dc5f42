/**
 * A domain's `<disk>` elements: virtkit's {@linkcode DiskConfig} to libvirt XML and back, and the live
 * disks with their backing chains (`<backingStore>`, as `virsh dumpxml` of a running domain shows them).
 *
 * The subset: `type` `file`, `block` or `volume`, `device='disk'`; `<driver name='qemu' type=FORMAT/>`,
 * `<source file|dev|pool+volume/>`, `<target dev bus/>`, `<readonly/>`. The bus is derived from the target
 * as libvirt does (`vdX` virtio, `sdX` sata, `hdX` ide). CD-ROMs, floppies, LUNs and network disks are not
 * modeled: they are reported and dropped.
 *
 * @module
 */
import type { BackingLayer, DiskConfig, DiskInfo } from "../domain.ts";
import { ElementReader, type XmlWarning } from "./element_reader.ts";
import { parseXmlDocument, type XmlNodeSpec } from "./xml_document.ts";

/**
 * The bus libvirt gives a target name by its prefix (`virDiskNameToBus`, x86 machines).
 *
 * @example
 * ```ts
 * import { busOfTarget } from "./disk_xml.ts";
 * if (busOfTarget("vdb") !== "virtio" || busOfTarget("sda") !== "sata" || busOfTarget("xvda") !== undefined) throw new Error("unexpected");
 * ```
 */
export function busOfTarget(target: string): string | undefined {
  if (target.startsWith("vd")) return "virtio";
  if (target.startsWith("sd")) return "sata";
  if (target.startsWith("hd")) return "ide";
  return undefined;
}

/**
 * The `<disk>` element of a disk config.
 *
 * @param disk A checked disk.
 * @returns Its element.
 *
 * @example
 * ```ts
 * import { diskToXml } from "./disk_xml.ts";
 * import { buildXml } from "./xml_document.ts";
 * const xml = buildXml(diskToXml({ target: "vda", volume: { pool: "p", name: "a.qcow2" }, readonly: true }));
 * if (!xml.includes('<source pool="p" volume="a.qcow2"/>') || !xml.includes("<readonly/>")) throw new Error(xml);
 * ```
 */
export function diskToXml(disk: DiskConfig): XmlNodeSpec {
  const source: XmlNodeSpec = disk.volume !== undefined
    ? { name: "source", attributes: { pool: disk.volume.pool, volume: disk.volume.name } }
    : { name: "source", attributes: { file: disk.path } };
  const children: XmlNodeSpec[] = [];
  if (disk.format !== undefined) children.push({ name: "driver", attributes: { name: "qemu", type: disk.format } });
  children.push(source, { name: "target", attributes: { dev: disk.target, bus: busOfTarget(disk.target) } });
  if (disk.readonly === true) children.push({ name: "readonly" });
  return { name: "disk", attributes: { type: disk.volume !== undefined ? "volume" : "file", device: "disk" }, children };
}

/** A disk as read from XML: what a config holds, plus the live chain when the XML has one. */
interface ReadDisk {
  readonly config: DiskConfig;
  readonly backingChain: BackingLayer[];
}

/**
 * Reads one `<disk>`; returns undefined (with a warning) for a kind of disk virtkit does not model.
 *
 * @throws {TypeError} For a disk without a target or without a source.
 *
 * @example
 * ```ts
 * import { diskFromXml } from "./disk_xml.ts";
 * import { ElementReader } from "./element_reader.ts";
 * import { parseXmlDocument } from "./xml_document.ts";
 * const disk = parseXmlDocument("<disk type='block'><source dev='/dev/sdb'/><target dev='vdb'/></disk>", "domain XML");
 * if (diskFromXml(new ElementReader(disk, "devices/disk", "domain XML", []))?.config.path !== "/dev/sdb") throw new Error("unexpected");
 * ```
 */
export function diskFromXml(disk: ElementReader): ReadDisk | undefined {
  const type = disk.attr("type") ?? "file";
  const device = disk.attr("device") ?? "disk";
  if (device !== "disk" || !["file", "block", "volume"].includes(type)) {
    disk.ignoreChildren(disk.element.children.map((c) => c.name), "the whole disk is dropped, reported once");
    disk.warn(disk.path, `a ${type} ${device} is not modeled by virtkit (only file, block and volume disks); dropped`);
    return undefined;
  }
  const target = disk.child("target");
  if (target === undefined) throw disk.error("has no <target dev=...>: every disk needs a target");
  const dev = target.requireAttr("dev");
  const bus = target.attr("bus");
  if (bus !== undefined && bus !== busOfTarget(dev)) {
    target.warn(`${target.path}@bus`, `bus "${bus}" is not modeled: virtkit attaches ${dev} as ${busOfTarget(dev) ?? "its target prefix says"}; dropped`);
  }
  target.finish();
  const config: DiskConfig = { target: dev };
  const source = disk.child("source");
  if (source === undefined) throw disk.error(`(${dev}) has no <source>: an empty drive is not modeled`);
  // index is libvirt's run-time numbering of chain layers.
  source.ignoreAttrs("index");
  if (type === "volume") config.volume = { pool: source.requireAttr("pool"), name: source.requireAttr("volume") };
  else config.path = source.requireAttr(type === "block" ? "dev" : "file");
  source.finish();
  const driver = disk.child("driver");
  if (driver !== undefined) {
    const name = driver.attr("name");
    if (name !== undefined && name !== "qemu") driver.warn(`${driver.path}@name`, `driver "${name}" is not modeled; virtkit drives QEMU`);
    const format = driver.attr("type");
    if (format !== undefined) config.format = format;
    driver.finish();
  }
  const readonly = disk.child("readonly");
  if (readonly !== undefined) {
    config.readonly = true;
    readonly.finish();
  }
  const backingChain: BackingLayer[] = [];
  const backing = disk.child("backingStore");
  if (backing !== undefined) readChain(backing, backingChain);
  // address and alias are assigned by libvirt (PCI slot, device id) and derived again by virtkit.
  disk.ignoreChildren(["address", "alias"], "assigned by libvirt");
  disk.finish();
  return { config, backingChain };
}

/** Follows nested `<backingStore>` elements; an empty one ends the chain. */
function readChain(store: ElementReader, out: BackingLayer[]): void {
  let current: ElementReader | undefined = store;
  while (current !== undefined && current.element.children.length > 0) {
    current.ignoreAttrs("type", "index");
    const type = current.attr("type") ?? "file";
    const source = current.child("source");
    const format = current.child("format")?.attr("type") ?? "raw";
    const path = source?.attr(type === "block" ? "dev" : "file");
    if (path === undefined) throw current.error("has no <source file=...> (network backing stores are not modeled)");
    out.push({ path, format });
    current = current.child("backingStore");
    if (out.length > 64) throw store.error("is deeper than 64 layers");
  }
}

/**
 * The disks of a domain as `virsh dumpxml` shows them, with backing chains from the live XML's
 * `<backingStore>` elements (an inactive definition has none: the chains come back empty).
 *
 * @param xml A domain document.
 * @returns One entry per modeled disk, in order; a disk without `<driver type>` is reported as raw
 *   (what QEMU opens it as under libvirt).
 * @throws {TypeError} For malformed XML or a disk without a target or source.
 * @example
 * ```ts
 * import { disksFromDomainXml } from "virtkit";
 * const [disk] = disksFromDomainXml(`<domain type='kvm'><devices><disk type='file' device='disk'>
 *   <driver name='qemu' type='qcow2'/><source file='/i/top.qcow2' index='1'/>
 *   <backingStore type='file' index='2'><format type='raw'/><source file='/i/base.raw'/><backingStore/></backingStore>
 *   <target dev='vda' bus='virtio'/></disk></devices></domain>`);
 * if (disk?.target !== "vda" || disk.backingChain[0]?.path !== "/i/base.raw") throw new Error("unexpected");
 * ```
 */
export function disksFromDomainXml(xml: string): DiskInfo[] {
  const what = "domain XML";
  const root = new ElementReader(parseXmlDocument(xml, what), "", what, []);
  if (root.element.name !== "domain") throw root.error(`is <${root.element.name}>, expected <domain>`);
  const disks = root.child("devices")?.children("disk") ?? [];
  return disks.flatMap((element) => {
    const read = diskFromXml(element);
    if (read === undefined) return [];
    const { config, backingChain } = read;
    const path = config.path ?? `${config.volume!.pool}/${config.volume!.name}`;
    return [{
      target: config.target,
      path,
      format: config.format ?? "raw",
      backingChain,
      ...(config.volume === undefined ? {} : { volume: config.volume }),
    }];
  });
}

/** Warnings are collected per document; this re-export keeps the type next to its producers. */
export type { XmlWarning };
