/** The XML layer under core/xml: what it decodes, what it refuses, what it writes. */
import { describe, expect, it } from "vitest";
import { buildXml, MAX_XML_LENGTH, parseXmlDocument } from "../../../core/xml/xml_document.ts";

describe("xml document", () => {
  it("decodes XML's predefined entities and character references, not HTML's named ones", () => {
    const root = parseXmlDocument(`<a x="&quot;&#x41;&apos;">&lt;&amp;&gt;&#66;&nbsp;<![CDATA[<raw>]]></a>`, "XML");
    expect(root.attributes.x).toBe(`"A'`);
    expect(root.text).toBe("<&>B&nbsp;<raw>");
  });

  it("keeps text as written (spaces), skips comments and the declaration, keeps children in order", () => {
    const root = parseXmlDocument(`<?xml version="1.0"?>\n<!-- c --><p><n> a b </n><m/><n>2</n></p>`, "XML");
    expect(root.children.map((c) => `${c.name}:${c.text}`)).toEqual(["n: a b ", "m:", "n:2"]);
  });

  it("writes escaped text and attributes that parse back to the same values", () => {
    const tricky = `a&b<c>"d'e]]>é🙂`;
    const xml = buildXml({ name: "r", attributes: { v: tricky, skipped: undefined }, children: [{ name: "t", text: tricky }, { name: "e" }] });
    expect(xml).not.toContain("skipped");
    const root = parseXmlDocument(xml, "XML");
    expect(root.attributes.v).toBe(tricky);
    expect(root.children[0]?.text).toBe(tricky);
    expect(root.children[1]).toMatchObject({ name: "e", children: [], text: "" });
  });

  it("refuses a document just over the limit, and accepts one at it", () => {
    const shell = "<a></a>";
    const atLimit = `<a>${" ".repeat(MAX_XML_LENGTH - shell.length)}</a>`;
    expect(parseXmlDocument(atLimit, "XML").name).toBe("a");
    expect(() => parseXmlDocument(`${atLimit} `, "XML")).toThrow(/more than the 4194304 accepted/);
  });
});
