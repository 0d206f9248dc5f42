/**
 * The checks every plugin definition goes through, hypervisor driver or storage backend alike, in one
 * place so both `define*` functions refuse the same malformed names with the same words.
 *
 * @module
 */

/** What a driver or backend name must look like: lower-case, starting with a letter (`"qemu"`, `"acme-san"`). */
const DRIVER_NAME = /^[a-z][a-z0-9-]*$/;

/**
 * Checks that a definition is an object with a well-formed `name` and an `open` function.
 *
 * @param def What a plugin passed to `defineHypervisorDriver` or `defineStorageBackend`.
 * @param what How the error names it (`"hypervisor driver"`, `"storage backend"`).
 * @returns Its name and `open`.
 * @throws {TypeError} For a non-object, a malformed name or a missing `open`.
 * @example
 * ```ts
 * import { checkDefinition } from "./driver_definition.ts";
 * const { name } = checkDefinition({ name: "acme-san", open: async () => ({}) }, "storage backend");
 * if (name !== "acme-san") throw new Error("unexpected");
 * let refused = false;
 * try { checkDefinition({ name: "Acme", open: async () => ({}) }, "storage backend"); } catch (e) { refused = e instanceof TypeError; }
 * if (!refused) throw new Error("an upper-case name must be refused");
 * ```
 */
export function checkDefinition(def: unknown, what: string): { name: string; open: unknown } {
  if (typeof def !== "object" || def === null) throw new TypeError(`Invalid ${what} definition: expected an object`);
  const { name, open } = def as { name?: unknown; open?: unknown };
  if (typeof name !== "string" || !DRIVER_NAME.test(name)) {
    throw new TypeError(`Invalid ${what} name ${JSON.stringify(name)}: expected lower-case letters, digits and "-", starting with a letter`);
  }
  if (typeof open !== "function") throw new TypeError(`Invalid ${what} "${name}": open must be a function`);
  return { name, open };
}
