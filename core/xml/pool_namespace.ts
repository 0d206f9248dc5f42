/**
 * virtkit's XML namespace in pool XML: what libvirt's pool XML has no element for (a `logical` pool's
 * thin pool, an `iscsi` pool's mutual CHAP account) is written in it, at the pool's top level, as
 * libvirt's own `fs:mount_opts` and `rbd:config_opts` extend pool XML. libvirt's parser skips elements
 * of a namespace it does not know, so `virsh pool-define` takes such a document (it does not keep them).
 *
 * @module
 */
import type { ElementReader } from "./element_reader.ts";

/**
 * The XML namespace of virtkit's additions to pool XML (a `logical` pool's `thinPool`, an `iscsi`
 * pool's `auth.mutual`), bound to the prefix `virtkit` when written; read under whatever prefix a
 * document binds it to.
 *
 * @example
 * ```ts
 * import { poolToXml, VIRTKIT_POOL_NS } from "virtkit";
 * const xml = poolToXml({ name: "vg0", type: "logical", volumeGroup: "vg0", thinPool: "tp" });
 * if (!xml.includes(`xmlns:virtkit="${VIRTKIT_POOL_NS}"`) || !xml.includes('<virtkit:thin_pool name="tp"')) throw new Error(xml);
 * ```
 */
export const VIRTKIT_POOL_NS = "http://virtkit.org/schemas/storagepool/logical/1.0";

/** The attribute that binds the prefix `virtkit` to {@linkcode VIRTKIT_POOL_NS}, for a written pool's root. */
export const VIRTKIT_NS_ATTRIBUTE: Readonly<Record<string, string>> = Object.freeze({ "xmlns:virtkit": VIRTKIT_POOL_NS });

/**
 * The qualified name under which a document holds virtkit's element `local`, or `undefined` when the
 * root binds no prefix to {@linkcode VIRTKIT_POOL_NS} (then it has none of virtkit's elements). Marks
 * the binding as read.
 *
 * @param root The pool element's reader.
 * @param local The element's local name (`"thin_pool"`).
 * @returns `PREFIX:local`, or `undefined`.
 * @example
 * ```ts
 * import { ElementReader } from "./element_reader.ts";
 * import { parseXmlDocument } from "./xml_document.ts";
 * import { VIRTKIT_POOL_NS, virtkitName } from "./pool_namespace.ts";
 * const root = new ElementReader(parseXmlDocument(`<pool xmlns:vk="${VIRTKIT_POOL_NS}"/>`, "pool XML"), "", "pool XML", []);
 * if (virtkitName(root, "thin_pool") !== "vk:thin_pool") throw new Error("unexpected");
 * ```
 */
export function virtkitName(root: ElementReader, local: string): string | undefined {
  const binding = Object.entries(root.element.attributes).find(([name, value]) => name.startsWith("xmlns:") && value === VIRTKIT_POOL_NS);
  if (binding === undefined) return undefined;
  root.ignoreAttrs(binding[0]);
  return `${binding[0].slice("xmlns:".length)}:${local}`;
}
