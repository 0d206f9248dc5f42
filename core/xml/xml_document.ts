/**
 * XML text to a small element tree and back, over fast-xml-parser (pure JavaScript, no dependencies on a
 * runtime, so it runs in `core/` on Deno, Node and browsers).
 *
 * Hostile input is bounded before and during parsing: a document longer than
 * {@linkcode MAX_XML_LENGTH} is refused before the parser sees it; a document type declaration
 * (`<!DOCTYPE`, where entity definitions and so expansion bombs live) is refused, since libvirt never
 * writes one; only XML's five predefined entities and character references are decoded; nesting is
 * capped by the parser (`maxNestedTags`), which also keeps the tree walk's recursion shallow.
 *
 * @module
 */
import { XMLBuilder, XMLParser, XMLValidator } from "fast-xml-parser";

/**
 * Longest XML text accepted, in characters: 4 MiB, the most libvirt's own RPC carries in one string
 * (`REMOTE_STRING_MAX`), so nothing libvirt can send is refused and nothing much larger is parsed.
 */
export const MAX_XML_LENGTH = 4 * 1024 * 1024;
/** Deepest element nesting accepted (libvirt's deepest, a disk's backing chain, is far shallower). */
export const MAX_XML_DEPTH = 64;

/** One element: its name, attributes, child elements in order, and its text (joined, untrimmed). */
export interface XmlElement {
  /** Tag name. */
  readonly name: string;
  /** Attribute values, entity references decoded. */
  readonly attributes: Readonly<Record<string, string>>;
  /** Child elements in document order. */
  readonly children: readonly XmlElement[];
  /** The element's own character data (text and CDATA), concatenated. */
  readonly text: string;
}

const TEXT = "#text";
const ATTRS = ":@";
type OrderedNode = Record<string, unknown>;

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  // An object (not `true`) turns on character references (`&#65;`) without HTML's named entities.
  htmlEntities: {} as unknown as boolean,
  processEntities: { enabled: true, maxEntityCount: 1, maxEntitySize: 1, maxExpandedLength: MAX_XML_LENGTH },
  maxNestedTags: MAX_XML_DEPTH,
});

const builder = new XMLBuilder({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  format: true,
  indentBy: "  ",
  suppressEmptyNode: true,
});

/**
 * Parses one XML document into its root element.
 *
 * @param xml The document.
 * @param what What it should be, for messages (`"domain XML"`).
 * @returns The root element.
 * @throws {TypeError} For a non-string, a document over {@linkcode MAX_XML_LENGTH} characters, a
 *   DOCTYPE, malformed XML (with line and column), or not exactly one root element.
 * @example
 * ```ts
 * import { parseXmlDocument } from "./xml_document.ts";
 * const root = parseXmlDocument("<pool type='dir'><name>a &amp; b</name></pool>", "pool XML");
 * if (root.attributes.type !== "dir" || root.children[0]?.text !== "a & b") throw new Error("unexpected");
 * ```
 */
export function parseXmlDocument(xml: string, what: string): XmlElement {
  if (typeof xml !== "string") throw new TypeError(`Invalid ${what}: expected a string, got ${typeof xml}`);
  if (xml.length > MAX_XML_LENGTH) {
    throw new TypeError(`Invalid ${what}: ${xml.length} characters is more than the ${MAX_XML_LENGTH} accepted`);
  }
  if (xml.includes("<!DOCTYPE")) {
    throw new TypeError(`Invalid ${what}: a document type declaration (<!DOCTYPE ...>) is refused; libvirt XML has none, and entity definitions are not expanded`);
  }
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    const where = valid.err.col === undefined ? `line ${valid.err.line}` : `line ${valid.err.line}, column ${valid.err.col}`;
    throw new TypeError(`Invalid ${what}: malformed XML at ${where}: ${valid.err.msg}`);
  }
  let nodes: OrderedNode[];
  try {
    nodes = parser.parse(xml) as OrderedNode[];
  } catch (error) {
    throw new TypeError(`Invalid ${what}: ${(error as Error).message}`);
  }
  const roots = nodes.filter((node) => elementName(node) !== undefined);
  if (roots.length !== 1) throw new TypeError(`Invalid ${what}: expected one root element, found ${roots.length}`);
  return toElement(roots[0]!);
}

function elementName(node: OrderedNode): string | undefined {
  return Object.keys(node).find((key) => key !== ATTRS && key !== TEXT);
}

function toElement(node: OrderedNode): XmlElement {
  const name = elementName(node)!;
  const attributes = { ...(node[ATTRS] as Record<string, string> | undefined) };
  const children: XmlElement[] = [];
  let text = "";
  for (const child of node[name] as OrderedNode[]) {
    if (TEXT in child) text += String(child[TEXT]);
    else if (elementName(child) !== undefined) children.push(toElement(child));
  }
  return Object.freeze({ name, attributes: Object.freeze(attributes), children: Object.freeze(children), text });
}

/** What {@linkcode buildXml} takes: an element with optional attributes (undefined ones are left out), children and text. */
export interface XmlNodeSpec {
  /** Tag name. */
  readonly name: string;
  /** Attributes; `undefined` values are omitted. */
  readonly attributes?: Readonly<Record<string, string | number | undefined>>;
  /** Child elements. */
  readonly children?: readonly XmlNodeSpec[];
  /** Text content. */
  readonly text?: string | number;
}

/**
 * Writes an element tree as indented XML text (attribute values and text escaped).
 *
 * @param root The root element.
 * @returns The XML text, ending in a newline.
 * @example
 * ```ts
 * import { buildXml, parseXmlDocument } from "./xml_document.ts";
 * const xml = buildXml({ name: "pool", attributes: { type: "dir" }, children: [{ name: "name", text: "a<b" }] });
 * if (parseXmlDocument(xml, "pool XML").children[0]?.text !== "a<b") throw new Error(xml);
 * ```
 */
export function buildXml(root: XmlNodeSpec): string {
  const text = builder.build([toOrdered(root)]) as string;
  return `${text.trim()}\n`;
}

function toOrdered(spec: XmlNodeSpec): OrderedNode {
  const content: OrderedNode[] = [];
  if (spec.text !== undefined) content.push({ [TEXT]: String(spec.text) });
  for (const child of spec.children ?? []) content.push(toOrdered(child));
  const node: OrderedNode = { [spec.name]: content };
  const attributes = Object.entries(spec.attributes ?? {}).filter(([, value]) => value !== undefined);
  if (attributes.length > 0) node[ATTRS] = Object.fromEntries(attributes.map(([key, value]) => [key, String(value)]));
  return node;
}
