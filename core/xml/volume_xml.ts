/**
 * libvirt storage volume XML (formatstorage) to a volume spec and back: `name`, `capacity` and
 * `allocation` (with `unit`, default bytes), `target/format`, `backingStore` (`path` and `format`).
 *
 * `key`, `physical`, `target/path` and `timestamps` are the volume's state (libvirt reports them in
 * `vol-dumpxml`; the pool decides them), so they are skipped. Permissions, encryption, qcow2 `compat`
 * and features are reported and dropped.
 *
 * @module
 */
import { checkVolumeSpec, type VolumeCreateSpec } from "../config/volume_spec.ts";
import { UnsupportedError } from "../errors.ts";
import { bytesSchema } from "../config/rules.ts";
import { parseConfig } from "../config/parse_config.ts";
import { ElementReader, settleWarnings, type XmlParseOptions, type XmlParseResult, type XmlWarning } from "./element_reader.ts";
import { buildXml, parseXmlDocument, type XmlNodeSpec } from "./xml_document.ts";

const WHAT = "volume XML";

/** A volume spec with the allocation libvirt's XML can carry (bytes to allocate at creation). */
export type VolumeXmlConfig = VolumeCreateSpec & {
  /** Bytes to allocate at creation (libvirt's `<allocation>`); thin when absent. */
  allocationBytes?: number;
};

/**
 * Writes a volume spec as libvirt volume XML that `virsh vol-create` accepts.
 *
 * @param spec Name, capacity, format, backing; `allocationBytes` when given (libvirt allocates that much).
 * @returns The XML text.
 * @throws {TypeError} For an invalid spec.
 * @example
 * ```ts
 * import { volumeFromXml, volumeToXml } from "virtkit";
 * const xml = volumeToXml({ name: "top.qcow2", capacityBytes: 2 ** 30, format: "qcow2", backing: { path: "/i/base.raw", format: "raw" } });
 * const { config } = volumeFromXml(xml);
 * if (config.backing?.path !== "/i/base.raw" || config.capacityBytes !== 2 ** 30) throw new Error(xml);
 * ```
 */
export function volumeToXml(spec: VolumeXmlConfig): string {
  const { allocationBytes, ...rest } = spec;
  const checked = checkVolumeSpec(rest);
  const allocation = allocationBytes === undefined ? undefined : parseConfig(bytesSchema(0), allocationBytes, `allocationBytes of volume "${checked.name}"`);
  const children: XmlNodeSpec[] = [
    { name: "name", text: checked.name },
    { name: "capacity", attributes: { unit: "bytes" }, text: checked.capacityBytes },
  ];
  if (allocation !== undefined) children.push({ name: "allocation", attributes: { unit: "bytes" }, text: allocation });
  children.push({ name: "target", children: [{ name: "format", attributes: { type: checked.format } }] });
  if (checked.backing !== undefined) {
    children.push({
      name: "backingStore",
      children: [{ name: "path", text: checked.backing.path }, { name: "format", attributes: { type: checked.backing.format } }],
    });
  }
  return buildXml({ name: "volume", children });
}

/**
 * Reads libvirt volume XML (`virsh vol-dumpxml`, or a create document) into a checked spec.
 *
 * @param xml The document.
 * @param options `strict: true` turns every warning into a `TypeError`.
 * @returns The spec (format `raw` when the XML names none) and what was dropped.
 * @throws {TypeError} For malformed XML, a missing name or capacity, an unknown unit, or (strict)
 *   anything not modeled.
 * @throws {UnsupportedError} For a format other than raw and qcow2 (virtkit creates only those).
 * @example
 * ```ts
 * import { volumeFromXml } from "virtkit";
 * const { config } = volumeFromXml("<volume><name>a.img</name><capacity unit='G'>1</capacity><allocation unit='M'>4</allocation></volume>");
 * if (config.capacityBytes !== 2 ** 30 || config.allocationBytes !== 4 * 2 ** 20 || config.format !== "raw") throw new Error("unexpected");
 * ```
 */
export function volumeFromXml(xml: string, options?: XmlParseOptions): XmlParseResult<VolumeXmlConfig> {
  const warnings: XmlWarning[] = [];
  const root = new ElementReader(parseXmlDocument(xml, WHAT), "", WHAT, warnings);
  if (root.element.name !== "volume") throw root.error(`is <${root.element.name}>, expected <volume>`);
  // type (file, block) follows from the pool; key, physical and the paths are state the pool decides.
  root.ignoreAttrs("type");
  root.ignoreChildren(["key", "physical"], "state");
  const name = root.childText("name");
  if (name === undefined) throw root.error("has no <name>");
  const capacity = root.child("capacity");
  if (capacity === undefined) throw root.error("has no <capacity>");
  const capacityBytes = capacity.bytes("bytes");
  const allocation = root.child("allocation");
  const allocationBytes = allocation?.bytes("bytes");
  const format = readTarget(root.child("target")) ?? "raw";
  const backing = readBacking(root.child("backingStore"));
  root.finish();
  if (format !== "raw" && format !== "qcow2") {
    throw new UnsupportedError("volumeFromXml", { detail: `volume "${name}" has format "${format}"; virtkit creates raw and qcow2 volumes` });
  }
  const spec = checkVolumeSpec({ name, capacityBytes, format, ...(backing === undefined ? {} : { backing }) });
  const config: VolumeXmlConfig = allocationBytes === undefined ? spec : { ...spec, allocationBytes };
  return { config, warnings: settleWarnings(warnings, WHAT, options) };
}

function readTarget(target: ElementReader | undefined): string | undefined {
  if (target === undefined) return undefined;
  target.ignoreChildren(["path", "timestamps"], "state");
  const format = target.child("format");
  const type = format?.requireAttr("type");
  format?.finish();
  target.finish();
  return type;
}

function readBacking(store: ElementReader | undefined): { path: string; format: string } | undefined {
  if (store === undefined) return undefined;
  store.ignoreChildren(["timestamps", "permissions"], "the backing image's state, not this volume's");
  const path = store.childText("path");
  if (path === undefined) throw store.error("has no <path>");
  const format = store.child("format");
  if (format === undefined) throw store.error("has no <format type=...>: virtkit never probes a backing image's format");
  const type = format.requireAttr("type");
  format.finish();
  store.finish();
  return { path, format: type };
}
