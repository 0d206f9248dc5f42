/**
 * The dispatcher for optional driver operations (libvirt's `virReportUnsupportedError`): core never
 * calls an optional method with `?.()`, which would turn a missing capability into a silent no-op.
 *
 * @module
 */
import { UnsupportedError } from "./errors.ts";

/** The keys of `T` whose values are (possibly optional) methods. */
export type OperationName<T> = {
  [K in keyof T]-?: NonNullable<T[K]> extends (...args: never[]) => unknown ? K : never;
}[keyof T] & string;

/**
 * Returns `impl[operation]` bound to `impl`, or throws when the driver does not implement it.
 *
 * @typeParam T The driver interface (`HypervisorConnection`, `StoragePoolBackend`, ...).
 * @typeParam K The operation's name.
 * @param impl The driver object.
 * @param operation The method name, such as `"startDomain"`.
 * @param driver The driver's name, recorded in the error.
 * @returns The bound method.
 * @throws {UnsupportedError} When `impl` has no such method.
 * @example
 * ```ts
 * import { requireOp } from "./require_op.ts";
 * const impl: { ping?(): string } = {};
 * let code = "";
 * try { requireOp(impl, "ping", "demo"); } catch (error) { code = (error as { code: string }).code; }
 * if (code !== "unsupported") throw new Error("unexpected");
 * ```
 */
export function requireOp<T extends object, K extends OperationName<T>>(
  impl: T,
  operation: K,
  driver: string,
): NonNullable<T[K]> {
  const method: unknown = impl[operation];
  if (typeof method !== "function") throw new UnsupportedError(operation, { driver });
  return method.bind(impl) as NonNullable<T[K]>;
}
