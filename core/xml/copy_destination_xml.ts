/**
 * The destination of a block copy as libvirt's `virDomainBlockCopy` takes it: a `<disk>` element with a
 * `<source>` and optionally `<driver type=FORMAT/>`, and no target (the disk being copied has it). Both
 * ways: the remote driver writes it, virtkitd reads what `virsh blockcopy --xml` or a libvirt client sent.
 *
 * @module
 */
import type { BlockCopyDestination } from "../domain.ts";
import { ElementReader, type XmlWarning } from "./element_reader.ts";
import { buildXml, parseXmlDocument } from "./xml_document.ts";

/** A block copy destination with its format, when the XML names one. */
export interface CopyDestinationXml {
  /** `{ path }` for a file or block device, `{ pool, name }` for a pool volume. */
  readonly destination: BlockCopyDestination;
  /** `<driver type>`: absent lets the hypervisor pick (a created copy takes the source's format). */
  readonly format?: string;
}

/**
 * Writes a destination as a `<disk>` element: `type='file'` with `<source file>`, or `type='volume'`
 * with `<source pool volume>`.
 *
 * @param destination Where the copy goes, and its format when known.
 * @returns The XML text.
 * @example
 * ```ts
 * import { copyDestinationFromXml, copyDestinationToXml } from "./copy_destination_xml.ts";
 * const xml = copyDestinationToXml({ destination: { path: "/i/a&b.qcow2" }, format: "qcow2" });
 * const back = copyDestinationFromXml(xml);
 * if (!("path" in back.destination) || back.destination.path !== "/i/a&b.qcow2" || back.format !== "qcow2") throw new Error(xml);
 * ```
 */
export function copyDestinationToXml(destination: CopyDestinationXml): string {
  const target = destination.destination;
  const source = "path" in target
    ? { name: "source", attributes: { file: target.path } }
    : { name: "source", attributes: { pool: target.pool, volume: target.name } };
  const driver = destination.format === undefined ? [] : [{ name: "driver", attributes: { type: destination.format } }];
  return buildXml({ name: "disk", attributes: { type: "path" in target ? "file" : "volume" }, children: [source, ...driver] });
}

/**
 * Reads a block copy destination (`<disk type='file|block|volume'>`).
 *
 * @param xml The `<disk>` document.
 * @returns The destination and format.
 * @throws {TypeError} For malformed XML, a root that is not `<disk>`, a network or other disk type, or a
 *   `<source>` without its file, device or pool and volume.
 * @example
 * ```ts
 * import { copyDestinationFromXml } from "./copy_destination_xml.ts";
 * const { destination, format } = copyDestinationFromXml("<disk type='volume'><source pool='p' volume='v.raw'/></disk>");
 * if (!("pool" in destination) || destination.name !== "v.raw" || format !== undefined) throw new Error("unexpected");
 * let refused = false;
 * try { copyDestinationFromXml("<disk type='network'><source protocol='nbd'/></disk>"); } catch { refused = true; }
 * if (!refused) throw new Error("a network destination is not modeled");
 * ```
 */
export function copyDestinationFromXml(xml: string): CopyDestinationXml {
  const what = "block copy destination XML";
  const warnings: XmlWarning[] = [];
  const disk = new ElementReader(parseXmlDocument(xml, what), "", what, warnings);
  if (disk.element.name !== "disk") throw disk.error(`is <${disk.element.name}>, expected <disk>`);
  const type = disk.attr("type") ?? "file";
  if (!["file", "block", "volume"].includes(type)) throw disk.error(`has type "${type}": only file, block and volume destinations are modeled`);
  const source = disk.child("source");
  if (source === undefined) throw disk.error("has no <source>");
  const destination: BlockCopyDestination = type === "volume"
    ? { pool: source.requireAttr("pool"), name: source.requireAttr("volume") }
    : { path: source.requireAttr(type === "block" ? "dev" : "file") };
  const format = disk.child("driver")?.attr("type");
  return format === undefined ? { destination } : { destination, format };
}
