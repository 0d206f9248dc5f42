/** Hostile and broken XML: a clear TypeError or UnsupportedError, without expanding or parsing what is refused. */
import { describe, expect, it } from "vitest";
import { UnsupportedError } from "../../../core/errors.ts";
import { disksFromDomainXml, domainFromXml, MAX_XML_LENGTH, poolFromXml, volumeFromXml } from "../../../core/xml/mod.ts";

const domain = (devices: string, memory = "<memory unit='MiB'>64</memory>") =>
  `<domain type='kvm'><name>d</name>${memory}<vcpu>1</vcpu><devices>${devices}</devices></domain>`;

const billionLaughs = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 ${Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? "" : i};`.repeat(10)}">`).join("\n ")}
]>
<domain><name>&lol9;</name></domain>`;

describe("bad XML input", () => {
  it("malformed XML is a TypeError naming the line and column", () => {
    expect(() => domainFromXml("<domain><name>d</domain>")).toThrow(/^Invalid domain XML: malformed XML at line 1, column \d+/);
    expect(() => poolFromXml("")).toThrow(TypeError);
    expect(() => volumeFromXml("<volume><name>a</name>")).toThrow(/Unclosed tag 'volume'/);
    expect(() => domainFromXml("<domain/><domain/>")).toThrow(/expected one root element, found 2/);
    expect(() => domainFromXml(42 as unknown as string)).toThrow(/expected a string, got number/);
  });

  it("an entity expansion bomb (billion laughs) is refused at its DOCTYPE, nothing expanded", () => {
    expect(billionLaughs.length).toBeLessThan(2000);
    for (const parse of [domainFromXml, poolFromXml, volumeFromXml, disksFromDomainXml]) {
      expect(() => parse(billionLaughs)).toThrow(/document type declaration .* refused/);
    }
    // An external entity (XXE) lives in a DOCTYPE too.
    expect(() => domainFromXml(`<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><domain><name>&x;</name></domain>`)).toThrow(TypeError);
  });

  it("a 100 MB document is refused by its size before parsing", () => {
    const huge = `<domain><name>${"x".repeat(100 * 1000 * 1000)}</name></domain>`;
    expect(() => domainFromXml(huge)).toThrow(`Invalid domain XML: ${huge.length} characters is more than the ${MAX_XML_LENGTH} accepted`);
  });

  it("nesting deeper than the cap is refused", () => {
    expect(() => domainFromXml(`${"<a>".repeat(500)}${"</a>".repeat(500)}`)).toThrow(/Maximum nested tags/);
  });

  it("a disk without a target, or without a source, is a TypeError with its path", () => {
    expect(() => domainFromXml(domain("<disk type='file' device='disk'><source file='/a'/></disk>"))).toThrow(
      "Invalid domain XML: devices/disk has no <target dev=...>: every disk needs a target",
    );
    expect(() => disksFromDomainXml(domain("<disk type='file'><source file='/a'/><target dev='vda'/></disk><disk type='file'><target dev='vdb'/></disk>"))).toThrow(
      /devices\/disk\[1\] \(vdb\) has no <source>/,
    );
    expect(() => domainFromXml(domain("<disk type='file'><source file='/a'/><target bus='virtio'/></disk>"))).toThrow(/devices\/disk\/target needs a non-empty dev attribute/);
  });

  it("sizes with unknown units, or that are not whole numbers, are a TypeError naming the element", () => {
    expect(() => domainFromXml(domain("", "<memory unit='parsec'>64</memory>"))).toThrow(/memory has unknown unit "parsec"/);
    expect(() => domainFromXml(domain("", "<memory unit='MiB'>6.4</memory>"))).toThrow(/memory is "6.4", expected a whole number/);
    expect(() => volumeFromXml("<volume><name>a</name><capacity unit='XB'>1</capacity></volume>")).toThrow(/capacity has unknown unit "XB"/);
    expect(() => volumeFromXml("<volume><name>a</name><capacity unit='EiB'>9</capacity></volume>")).toThrow(RangeError);
    // libvirt's spellings, case-insensitive.
    expect(volumeFromXml("<volume><name>a</name><capacity unit='kb'>3</capacity></volume>").config.capacityBytes).toBe(3000);
    expect(domainFromXml(domain("", "<memory unit='g'>1</memory>")).config.memoryBytes).toBe(2 ** 30);
  });

  it("a pool type virtkit has no backend for is an UnsupportedError; a volume format it cannot create too", () => {
    expect(() => poolFromXml("<pool type='rbd'><name>ceph</name></pool>")).toThrow(UnsupportedError);
    expect(() => poolFromXml("<pool type='netfs'><name>nfs</name></pool>")).toThrow(/pool type "netfs" has no backend/);
    expect(() => volumeFromXml("<volume><name>a.vmdk</name><capacity>1</capacity><target><format type='vmdk'/></target></volume>")).toThrow(UnsupportedError);
  });

  it("XML that parses but breaks the config schema fails by the schema's rules", () => {
    expect(() => domainFromXml(domain("<disk type='file'><source file='/a'/><target dev='vd/a'/></disk>"))).toThrow(
      'Invalid domain config "d": disks[0].target: "vd/a": it contains a path separator',
    );
    expect(() => poolFromXml("<pool type='dir'><name>p</name><target><path>relative</path></target></pool>")).toThrow(/path: "relative": it is not an absolute path/);
    expect(() => domainFromXml("<domain><name>d</name><memory>1</memory></domain>")).toThrow("Invalid domain XML: <domain> has no <vcpu>");
  });
});
