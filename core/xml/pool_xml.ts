/**
 * libvirt storage pool XML (formatstorage) to a {@linkcode PoolConfig} and back, for the pool types
 * virtkit has backends for:
 *
 * - `dir`: `<target><path>` is `path`;
 * - `logical`: `<source><name>` is `volumeGroup`, each `<source><device path>` one of `devices`,
 *   `<source><format type='lvm2'/>` and `<target><path>/dev/VG</path>` are what libvirt derives;
 *   `thinPool` is `<virtkit:thin_pool name='LV'/>` in virtkit's namespace {@linkcode VIRTKIT_POOL_NS}
 *   (libvirt has no thin pool element; see core/xml/pool_namespace.ts);
 * - `iscsi`: host, port, target IQN, `initiator` and CHAP `auth` (a named secret, never a password; its
 *   mutual account in virtkit's namespace), as core/xml/iscsi_pool_xml.ts says.
 *
 * `<uuid>` is kept (`uuid`). `<capacity>`, `<allocation>` and `<available>` are state (read with
 * `pool.info()`), not definition, and are skipped. Anything else (permissions, ...) is reported and
 * dropped. Another pool type is an `UnsupportedError`: virtkit cannot serve it.
 *
 * @module
 */
import { UnsupportedError } from "../errors.ts";
import { checkPoolConfig, type DirPoolConfig, type IscsiPoolConfig, type LogicalPoolConfig, type PoolConfig } from "../config/pool_config.ts";
import { ElementReader, settleWarnings, type XmlParseOptions, type XmlParseResult, type XmlWarning } from "./element_reader.ts";
import { iscsiPoolNodes, readIscsiPool } from "./iscsi_pool_xml.ts";
import { VIRTKIT_NS_ATTRIBUTE, virtkitName } from "./pool_namespace.ts";
import { buildXml, parseXmlDocument, type XmlNodeSpec } from "./xml_document.ts";

export { VIRTKIT_POOL_NS } from "./pool_namespace.ts";

const WHAT = "pool XML";

const THIN_POOL = "thin_pool";
/**
 * The pool types the XML module reads and writes.
 *
 * @example
 * ```ts
 * import { XML_POOL_TYPES } from "./pool_xml.ts";
 * if (!XML_POOL_TYPES.includes("iscsi") || XML_POOL_TYPES.includes("memory")) throw new Error("unexpected");
 * ```
 */
export const XML_POOL_TYPES: readonly string[] = Object.freeze(["dir", "logical", "iscsi"]);

/**
 * Writes a pool config as libvirt pool XML that `virsh pool-define` accepts.
 *
 * @param config A `dir`, `logical` or `iscsi` pool.
 * @returns The XML text.
 * @throws {TypeError} For an invalid config.
 * @throws {UnsupportedError} For another type (libvirt has no `memory` pool; plugins' types are theirs).
 * @example
 * ```ts
 * import { poolFromXml, poolToXml } from "virtkit";
 * const xml = poolToXml({ name: "images", type: "dir", path: "/var/lib/images" });
 * const { config } = poolFromXml(xml);
 * if (config.type !== "dir" || config.path !== "/var/lib/images") throw new Error(xml);
 * ```
 */
export function poolToXml(config: PoolConfig): string {
  const checked = checkPoolConfig(config);
  const head: XmlNodeSpec[] = [{ name: "name", text: checked.name }];
  const uuid = (checked as { uuid?: string }).uuid;
  if (uuid !== undefined) head.push({ name: "uuid", text: uuid });
  // OtherPoolConfig's open `type` defeats narrowing by `type`, hence the casts after the check.
  switch (checked.type) {
    case "dir": {
      const c = checked as DirPoolConfig;
      return buildXml({ name: "pool", attributes: { type: "dir" }, children: [...head, target(c.path)] });
    }
    case "logical": {
      const c = checked as LogicalPoolConfig;
      const thin = c.thinPool === undefined ? [] : [{ name: `virtkit:${THIN_POOL}`, attributes: { name: c.thinPool } }];
      return buildXml({
        name: "pool",
        attributes: { type: "logical", ...(c.thinPool === undefined ? {} : VIRTKIT_NS_ATTRIBUTE) },
        children: [...head, {
          name: "source",
          children: [
            ...(c.devices ?? []).map((path) => ({ name: "device", attributes: { path } })),
            { name: "name", text: c.volumeGroup },
            { name: "format", attributes: { type: "lvm2" } },
          ],
        }, target(`/dev/${c.volumeGroup}`), ...thin],
      });
    }
    case "iscsi": {
      const { children, namespaced } = iscsiPoolNodes(checked as IscsiPoolConfig);
      return buildXml({ name: "pool", attributes: { type: "iscsi", ...(namespaced ? VIRTKIT_NS_ATTRIBUTE : {}) }, children: [...head, ...children] });
    }
    default:
      throw new UnsupportedError("poolToXml", {
        detail: `pool "${checked.name}" is of type "${checked.type}", which libvirt has no pool XML for (virtkit writes ${XML_POOL_TYPES.join(", ")})`,
      });
  }
}

function target(path: string): XmlNodeSpec {
  return { name: "target", children: [{ name: "path", text: path }] };
}

/**
 * Reads libvirt pool XML (`virsh pool-dumpxml`, or a definition) into a checked pool config.
 *
 * @param xml The document.
 * @param options `strict: true` turns every warning into a `TypeError`.
 * @returns The config and what was dropped.
 * @throws {TypeError} For malformed XML, missing fields, or (strict) anything not modeled.
 * @throws {UnsupportedError} For a pool type virtkit has no backend for (`netfs`, `rbd`, ...).
 * @example
 * ```ts
 * import { poolFromXml } from "virtkit";
 * const { config } = poolFromXml(`<pool type='iscsi'><name>san</name><source><host name='10.0.0.5' port='3261'/>
 *   <device path='iqn.2026-01.org.example:disks'/></source><target><path>/dev/disk/by-path</path></target></pool>`);
 * if (config.type !== "iscsi" || config.port !== 3261 || config.target !== "iqn.2026-01.org.example:disks") throw new Error("unexpected");
 * ```
 */
export function poolFromXml(xml: string, options?: XmlParseOptions): XmlParseResult<PoolConfig> {
  const warnings: XmlWarning[] = [];
  const root = new ElementReader(parseXmlDocument(xml, WHAT), "", WHAT, warnings);
  if (root.element.name !== "pool") throw root.error(`is <${root.element.name}>, expected <pool>`);
  const type = root.requireAttr("type");
  if (!XML_POOL_TYPES.includes(type)) {
    throw new UnsupportedError("poolFromXml", {
      detail: `pool type "${type}" has no backend in virtkit (it has ${XML_POOL_TYPES.join(", ")})`,
    });
  }
  const name = root.childText("name");
  if (name === undefined) throw root.error("has no <name>");
  const uuid = root.childText("uuid")?.trim();
  // Sizes are the pool's state (pool.info()), not its definition.
  root.ignoreChildren(["capacity", "allocation", "available"], "state");
  const source = root.child("source");
  const targetPath = readTarget(root);
  let config: Record<string, unknown>;
  if (type === "dir") {
    if (targetPath === undefined) throw root.error("(dir) has no <target><path>");
    config = { path: targetPath };
    source?.finish();
  } else if (type === "logical") {
    const volumeGroup = source?.childText("name") ?? name;
    const devices = (source?.children("device") ?? []).map((device) => {
      const path = device.requireAttr("path");
      device.finish();
      return path;
    });
    const format = source?.child("format");
    if (format !== undefined && format.attr("type") !== "lvm2") format.warn(format.path, `format "${format.attr("type")}" is not modeled (LVM2 only); dropped`);
    format?.finish();
    source?.finish();
    if (targetPath !== undefined && targetPath !== `/dev/${volumeGroup}`) root.warn("target/path", `"${targetPath}" is not modeled: LVs are at /dev/${volumeGroup}; dropped`);
    const thinPool = readThinPool(root);
    config = { volumeGroup, ...(devices.length > 0 ? { devices } : {}), ...(thinPool === undefined ? {} : { thinPool }) };
  } else {
    config = readIscsiPool(root, source, targetPath);
  }
  root.finish();
  const checked = checkPoolConfig({ name, type, ...(uuid === undefined ? {} : { uuid }), ...config } as PoolConfig);
  return { config: checked, warnings: settleWarnings(warnings, WHAT, options) };
}

function readTarget(root: ElementReader): string | undefined {
  const target = root.child("target");
  if (target === undefined) return undefined;
  const path = target.childText("path");
  target.finish();
  return path;
}

/** `<P:thin_pool name='LV'/>`, P being the prefix the document binds {@linkcode VIRTKIT_POOL_NS} to. */
function readThinPool(root: ElementReader): string | undefined {
  const name = virtkitName(root, THIN_POOL);
  const thin = name === undefined ? undefined : root.child(name);
  if (thin === undefined) return undefined;
  const pool = thin.requireAttr("name");
  thin.finish();
  return pool;
}
