/**
 * Schema pieces every config shares: object names, paths, UUIDs, byte counts. Each rule says in its
 * message what it wants, so the error of `parseConfig` reads as a sentence.
 *
 * @module
 */
import * as v from "valibot";
import { MAX_BYTES } from "../units.ts";
import { hasControlCharacter, nameProblem } from "../validate.ts";

/**
 * An object name (domain, pool, volume, disk target): the rules of `assertName`.
 *
 * @param maxLength Longest allowed, in characters.
 * @returns The schema.
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { nameSchema } from "./rules.ts";
 * if (!v.is(nameSchema(64), "web1") || v.is(nameSchema(64), "../x")) throw new Error("unexpected");
 * ```
 */
export function nameSchema(maxLength: number) {
  return v.pipe(
    v.string(),
    v.rawCheck(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      const problem = nameProblem(dataset.value, maxLength);
      if (problem !== undefined) addIssue({ message: problem });
    }),
  );
}

/** An absolute host path without control characters. */
export const absolutePathSchema = v.pipe(
  v.string(),
  v.check((path) => path.startsWith("/"), "it is not an absolute path"),
  v.check((path) => !hasControlCharacter(path), "it contains a control character"),
);

/** A host path (or a driver's locator): not empty, no control characters. */
export const pathSchema = v.pipe(
  v.string(),
  v.minLength(1, "it is empty"),
  v.check((path) => !hasControlCharacter(path), "it contains a control character"),
);

// Like libvirt (virUUIDParse + virUUIDIsValid): any 128-bit value written 8-4-4-4-12 in hex, except one
// whose digits are all the same; libvirt's own test UUID has variant 7, so no RFC 4122 version/variant rule.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A UUID as libvirt accepts it, lower-cased on the way in. */
export const uuidSchema = v.pipe(
  v.string(),
  v.check((uuid) => UUID.test(uuid), "it is not a UUID (8-4-4-4-12 hex digits)"),
  v.check((uuid) => new Set(uuid.replaceAll("-", "").toLowerCase()).size > 1, "its digits are all the same, which libvirt refuses"),
  v.toLowerCase(),
);

/**
 * A whole number of bytes from `min` to `MAX_BYTES`.
 *
 * @param min The smallest allowed (0 or 1).
 * @returns The schema.
 */
export function bytesSchema(min: number) {
  return v.pipe(
    v.number(),
    v.check((n) => Number.isInteger(n) && n >= min && n <= MAX_BYTES, `it is not a whole number of bytes from ${min} to ${MAX_BYTES}`),
  );
}

/**
 * A whole number in a range.
 *
 * @param min Smallest.
 * @param max Largest.
 * @returns The schema.
 */
export function integerSchema(min: number, max: number) {
  return v.pipe(v.number(), v.check((n) => Number.isInteger(n) && n >= min && n <= max, `it is not a whole number from ${min} to ${max}`));
}

/** The pair naming a volume: its pool and its name. */
export const volumeRefSchema = v.strictObject({ pool: nameSchema(255), name: nameSchema(255) });

/**
 * Names whose entries must be unique in a list (disk targets, pool names).
 *
 * @param key The field that must be unique.
 * @param what What it is, for the message.
 * @returns A pipe action for an array of objects.
 */
export function uniqueBy<T extends Record<string, unknown>>(key: keyof T & string, what: string) {
  return v.rawCheck<T[]>(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const seen = new Set<unknown>();
    dataset.value.forEach((item, index) => {
      if (seen.has(item[key])) {
        addIssue({
          message: `${what} ${JSON.stringify(item[key])} is used twice`,
          path: [{ type: "array", origin: "value", input: dataset.value, key: index, value: item }],
        });
      }
      seen.add(item[key]);
    });
  });
}
