/**
 * Reading libvirt XML element by element while keeping count of what was read, so whatever virtkit does
 * not model is reported as an {@linkcode XmlWarning} (with its path) instead of being dropped silently.
 *
 * @module
 */
import { byteUnitFactor, MAX_BYTES } from "../units.ts";
import type { XmlElement } from "./xml_document.ts";

/** Something in a libvirt document that virtkit does not model (and so drops), with where it is. */
export interface XmlWarning {
  /** Path from the root, without the root's own name: `devices/graphics`, `devices/disk[1]/driver@cache`. */
  path: string;
  /** What was dropped and why it matters. */
  message: string;
}

/** Options of the `*FromXml` functions. */
export interface XmlParseOptions {
  /** Turn every warning into a `TypeError` (default false: return them). */
  strict?: boolean;
}

/** Wraps one element; `finish()` reports the children and attributes nobody read. */
export class ElementReader {
  readonly element: XmlElement;
  /** Path of this element (empty for the root). */
  readonly path: string;
  readonly #what: string;
  readonly #warnings: XmlWarning[];
  readonly #readChildren = new Set<XmlElement>();
  readonly #readAttributes = new Set<string>();

  /**
   * @param element The element.
   * @param path Its path (empty for the root).
   * @param what The document kind for messages (`"domain XML"`).
   * @param warnings Where unread content is reported.
   */
  constructor(element: XmlElement, path: string, what: string, warnings: XmlWarning[]) {
    this.element = element;
    this.path = path;
    this.#what = what;
    this.#warnings = warnings;
  }

  /** The path of a child or attribute below this element. */
  below(name: string): string {
    return this.path === "" ? name : `${this.path}/${name}`;
  }

  /** A `TypeError` naming this element's path and the rule broken. */
  error(rule: string, at = this.path): TypeError {
    return new TypeError(`Invalid ${this.#what}: ${at || `<${this.element.name}>`} ${rule}`);
  }

  /** An attribute (marked read), or undefined. */
  attr(name: string): string | undefined {
    this.#readAttributes.add(name);
    return this.element.attributes[name];
  }

  /** An attribute that must be there and not be empty. */
  requireAttr(name: string): string {
    const value = this.attr(name);
    if (value === undefined || value === "") throw this.error(`needs a non-empty ${name} attribute`);
    return value;
  }

  /** Marks attributes as understood without reading them (libvirt's run-time or derived values). */
  ignoreAttrs(...names: string[]): void {
    for (const name of names) this.#readAttributes.add(name);
  }

  /** The trimmed text. */
  text(): string {
    return this.element.text.trim();
  }

  /** Every child element of that name, marked read, each with its own reader. */
  children(name: string): ElementReader[] {
    const matches = this.element.children.filter((child) => child.name === name);
    return matches.map((child, index) => {
      this.#readChildren.add(child);
      const path = matches.length > 1 ? `${name}[${index}]` : name;
      return new ElementReader(child, this.below(path), this.#what, this.#warnings);
    });
  }

  /** The child of that name; more than one is an error (libvirt allows one). */
  child(name: string): ElementReader | undefined {
    const all = this.children(name);
    if (all.length > 1) throw this.error(`has ${all.length} <${name}> elements; libvirt allows one`, this.below(name));
    return all[0];
  }

  /**
   * The child's text as written (not trimmed: a name or path keeps its spaces), or undefined when it is
   * absent.
   */
  childText(name: string): string | undefined {
    const child = this.child(name);
    if (child === undefined) return undefined;
    child.finish();
    return child.element.text;
  }

  /** Marks children as understood without reading them (`why` says, in the code, why dropping is right). */
  ignoreChildren(names: readonly string[], _why: string): void {
    for (const child of this.element.children) if (names.includes(child.name)) this.#readChildren.add(child);
  }

  /** Reports a value virtkit cannot keep. */
  warn(path: string, message: string): void {
    this.#warnings.push({ path, message });
  }

  /**
   * A size: the element's digits times its `unit` attribute (libvirt's spellings, case-insensitive).
   *
   * @param defaultUnit The unit when the attribute is absent (`"KiB"` for memory, `"bytes"` for storage).
   * @throws {TypeError} For text that is not digits, or an unknown unit.
   * @throws {RangeError} Above `MAX_BYTES`.
   */
  bytes(defaultUnit: string): number {
    const unit = this.attr("unit") ?? defaultUnit;
    const factor = byteUnitFactor(unit);
    if (factor === undefined) throw this.error(`has unknown unit "${unit}" (expected b, bytes, KB, k, KiB, MB, M, MiB, GB, G, GiB, TB, T, TiB, PB, P, PiB, EB, E, EiB)`);
    const digits = this.text();
    const value = this.integer() * factor;
    if (value > MAX_BYTES) throw new RangeError(`Invalid ${this.#what}: ${this.path} is ${digits} ${unit}, above ${MAX_BYTES} bytes`);
    return value;
  }

  /**
   * The text as a whole number (digits only, as libvirt writes them).
   *
   * @throws {TypeError} For anything else.
   */
  integer(rule = "a whole number"): number {
    const digits = this.text();
    if (digits === "" || digits.length > 20 || ![...digits].every((c) => c >= "0" && c <= "9")) {
      throw this.error(`is ${JSON.stringify(digits.slice(0, 32))}, expected ${rule}`);
    }
    this.finish();
    const value = Number(digits);
    if (!Number.isSafeInteger(value)) throw new RangeError(`Invalid ${this.#what}: ${this.path} is ${digits}, above ${Number.MAX_SAFE_INTEGER}`);
    return value;
  }

  /** Reports every child and attribute not read (nor ignored) as a warning. */
  finish(): void {
    for (const name of Object.keys(this.element.attributes)) {
      if (!this.#readAttributes.has(name)) {
        this.#warnings.push({ path: `${this.path || this.element.name}@${name}`, message: `attribute ${name}="${this.element.attributes[name]}" is not modeled by virtkit; dropped` });
      }
    }
    const unread = this.element.children.filter((child) => !this.#readChildren.has(child));
    for (const child of unread) {
      const same = this.element.children.filter((c) => c.name === child.name);
      const path = this.below(same.length > 1 ? `${child.name}[${same.indexOf(child)}]` : child.name);
      this.#warnings.push({ path, message: `<${child.name}> is not modeled by virtkit; dropped` });
    }
  }
}

/**
 * Applies `strict`: with it, any warning is a `TypeError` listing them all.
 *
 * @param warnings What parsing reported.
 * @param what The document kind.
 * @param options The caller's options.
 * @returns The warnings, when not strict or there are none.
 * @throws {TypeError} In strict mode, when there is a warning.
 * @example
 * ```ts
 * import { settleWarnings } from "./element_reader.ts";
 * let threw = false;
 * try { settleWarnings([{ path: "devices/graphics", message: "dropped" }], "domain XML", { strict: true }); }
 * catch (error) { threw = error instanceof TypeError && (error as Error).message.includes("devices/graphics"); }
 * if (!threw || settleWarnings([], "domain XML", { strict: true }).length !== 0) throw new Error("unexpected");
 * ```
 */
export function settleWarnings(warnings: XmlWarning[], what: string, options: XmlParseOptions | undefined): XmlWarning[] {
  if (options?.strict === true && warnings.length > 0) {
    throw new TypeError(`Invalid ${what} (strict): ${warnings.map((w) => `${w.path}: ${w.message}`).join("; ")}`);
  }
  return warnings;
}
