/**
 * Which state a `test:` URI asks for.
 *
 * @module
 */
import { ConnectError } from "../../core/errors.ts";
import type { ConnectionUri } from "../../core/uri.ts";

/** What a `test:` connection starts with. */
export type TestUriSource =
  | { readonly kind: "default" }
  | { readonly kind: "empty" }
  | { readonly kind: "file"; readonly path: string };

const USAGE = "the test driver serves test:///default, test:///empty and test:///<absolute path of a fixture>.json";

/**
 * Reads a `test:` URI: `test:///default` (the seed), `test:///empty` (nothing) or
 * `test:///abs/path/fixture.json` (a fixture file).
 *
 * @param uri The parsed URI.
 * @returns What the connection starts with.
 * @throws {ConnectError} For a host, a transport (`test+unix`), query parameters or any other path.
 * @example
 * ```ts
 * import { testUriSource } from "./uri.ts";
 * const source = testUriSource({ href: "test:///tmp/f.json", scheme: "test", host: "", path: "/tmp/f.json", params: new Map() });
 * if (source.kind !== "file" || source.path !== "/tmp/f.json") throw new Error("unexpected");
 * ```
 */
export function testUriSource(uri: ConnectionUri): TestUriSource {
  const refuse = (why: string) => new ConnectError(`Cannot connect to "${uri.href}": ${why}; ${USAGE}`, { driver: "test" });
  if (uri.transport !== undefined) throw refuse(`transport "${uri.transport}" needs a daemon, which virtkit does not have yet`);
  if (uri.host !== "") throw refuse(`the test driver is local, it has no host "${uri.host}"`);
  if (uri.params.size > 0) throw refuse(`unknown parameter "${[...uri.params.keys()][0]}"`);
  if (uri.path === "/default") return { kind: "default" };
  if (uri.path === "/empty") return { kind: "empty" };
  if (uri.path.endsWith(".json") && uri.path.length > "/.json".length) return { kind: "file", path: uri.path };
  throw refuse(`unknown path "${uri.path}"`);
}
