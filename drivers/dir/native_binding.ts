/**
 * The one place the `dir` backend picks how to reach a libc call Node and Deno do not expose: the
 * `native/lseek` addon on Node, libc through FFI on Deno, both only on Linux (the constants the
 * callers pass are Linux's). `lseek`, `posix_fadvise`, `sync_file_range` and `copy_file_range` are bound
 * through it.
 *
 * @module
 */
import { type LseekAddon, loadLseekAddon } from "./node_lseek.ts";

/** How one libc function is declared to Deno's FFI (`Deno.dlopen`'s symbol definition). */
export interface DenoSymbol {
  /** FFI types of the parameters (`"i32"`, `"i64"`, `"buffer"`...). */
  parameters: readonly string[];
  /** FFI type of the result. */
  result: string;
  /** Run on another thread, returning a promise. */
  nonblocking?: boolean;
}

/** Builds a binding from what this runtime offers. */
export interface NativeBindings<T> {
  /**
   * On Node (Linux), from the addon.
   *
   * @param addon The loaded addon (older builds may lack a function: return `undefined` then).
   * @returns The binding, or `undefined`.
   */
  node(addon: LseekAddon): T | undefined;
  /**
   * On Deno (Linux), from libc.
   *
   * @param libc Opens `libc.so.6` with these symbols and returns them (throws without FFI permission).
   * @returns The binding, or `undefined`.
   */
  deno(libc: (symbols: Record<string, DenoSymbol>) => Record<string, unknown>): T | undefined;
}

interface DenoFfi {
  dlopen?(path: string, symbols: Record<string, DenoSymbol>): { symbols: Record<string, unknown> };
  build?: { os?: string };
}

/**
 * Builds a binding for this runtime. Never throws: no addon, no FFI permission or no glibc is just
 * `undefined` (the caller falls back to what works everywhere).
 *
 * @param bindings How to build it on Node and on Deno.
 * @returns The binding, or `undefined`.
 * @example
 * ```ts
 * import { bindNative } from "./native_binding.ts";
 * const lseek = bindNative({
 *   node: (addon) => addon.lseek,
 *   deno: (libc) => libc({ lseek: { parameters: ["i32", "i64", "i32"], result: "i64" } }).lseek,
 * });
 * if (lseek !== undefined && typeof lseek !== "function") throw new Error("unexpected");
 * ```
 */
export function bindNative<T>(bindings: NativeBindings<T>): T | undefined {
  const deno = (globalThis as unknown as { Deno?: DenoFfi }).Deno;
  try {
    if (deno === undefined) {
      if ((globalThis as { process?: { platform?: string } }).process?.platform !== "linux") return undefined;
      const addon = loadLseekAddon();
      return addon ? bindings.node(addon) : undefined;
    }
    const dlopen = deno.dlopen;
    if (typeof dlopen !== "function" || deno.build?.os !== "linux") return undefined;
    return bindings.deno((symbols) => dlopen.call(deno, "libc.so.6", symbols).symbols);
  } catch {
    return undefined;
  }
}
