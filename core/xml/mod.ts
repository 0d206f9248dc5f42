/**
 * libvirt's XML formats both ways, for people who bring the XML they have and for the remote driver and
 * virtkitd, which speak XML to libvirt's clients and daemons.
 *
 * - domains: {@linkcode domainToXml} / {@linkcode domainFromXml}, and {@linkcode disksFromDomainXml}
 *   for live disks with their backing chains;
 * - pools (`dir`, `logical`, `iscsi`): {@linkcode poolToXml} / {@linkcode poolFromXml};
 * - volumes: {@linkcode volumeToXml} / {@linkcode volumeFromXml}.
 *
 * Parsing returns what virtkit does not model as {@linkcode XmlWarning}s (`strict: true` makes them a
 * `TypeError`); the config itself goes through the same schemas as `define()`. Documents over
 * {@linkcode MAX_XML_LENGTH} characters and any `<!DOCTYPE` are refused before parsing.
 *
 * @example
 * ```ts
 * import { domainFromXml, domainToXml } from "virtkit";
 * const config = { name: "web1", vcpus: 1, memoryBytes: 2 ** 26, disks: [{ target: "vda", path: "/i/web1.raw", format: "raw" }] };
 * const back = domainFromXml(domainToXml(config)).config;
 * if (back.name !== "web1" || back.machine !== "q35" || back.disks[0]?.format !== "raw") throw new Error("unexpected");
 * ```
 *
 * @module
 */
export { domainFromXml, domainToXml, type DomainXmlOptions } from "./domain_xml.ts";
export { disksFromDomainXml } from "./disk_xml.ts";
export { poolFromXml, poolToXml, VIRTKIT_POOL_NS, XML_POOL_TYPES } from "./pool_xml.ts";
export { volumeFromXml, volumeToXml, type VolumeXmlConfig } from "./volume_xml.ts";
export type { XmlParseOptions, XmlParseResult, XmlWarning } from "./element_reader.ts";
export { MAX_XML_DEPTH, MAX_XML_LENGTH } from "./xml_document.ts";
