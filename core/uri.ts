/**
 * Connection URIs, as libvirt writes them: `scheme[+transport]://[user@][host][:port]/path?query`
 * (`test:///default`, `qemu:///session?stateDir=/tmp/x`, `qemu+tls://host/system`).
 *
 * @module
 */

/** A parsed connection URI: `scheme[+transport]://[user@][host][:port]/path?query`. */
export interface ConnectionUri {
  /** The whole URI as given. */
  readonly href: string;
  /** Driver scheme (`"qemu"`, `"test"`), lower-case. */
  readonly scheme: string;
  /** Transport after `+` (`"tls"`, `"unix"`), lower-case, if any. */
  readonly transport?: string;
  /** User before `@`, percent-decoded, if any. */
  readonly user?: string;
  /** Host, empty for local. IPv6 literals keep their brackets (`"[::1]"`). */
  readonly host: string;
  /** Port after the host, if any. */
  readonly port?: number;
  /** Path, percent-decoded (`"/session"`, `"/default"`); empty when the URI has none. */
  readonly path: string;
  /** Query parameters, percent-decoded. `+` stays a plus sign (RFC 3986, as libvirt reads them). */
  readonly params: ReadonlyMap<string, string>;
}

const SCHEME = /^[a-z][a-z0-9.-]*(?:\+[a-z][a-z0-9.-]*)?$/i;
const HOST = /^(?:[a-z0-9._~-]*|\[[0-9a-f:.]+\])$/i;
const USER = /^[a-z0-9._~!$&'()*+,;=%-]+$/i;
// Anything outside RFC 3986's unreserved, reserved and `%` must be percent-encoded.
const URI_CHARS = /^[a-z0-9._~:/?#[\]@!$&'()*+,;=%-]*$/i;
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Parses a connection URI.
 *
 * @param text Such as `"test:///default"` or `"qemu+ssh://root@host:22/system?keyfile=%2Froot%2Fid"`.
 * @returns The parts, frozen; the scheme and transport are lower-cased, path and params percent-decoded.
 * @throws {TypeError} When the text is not a string, is empty, has no scheme, a malformed scheme, no `//`,
 *   a fragment, control characters or spaces, a bad port, a repeated or empty parameter name, or
 *   malformed percent-encoding.
 * @example
 * ```ts
 * import { parseUri } from "virtkit";
 * const uri = parseUri("qemu+tls://host/system?stateDir=%2Ftmp%2Fx");
 * if (uri.scheme !== "qemu" || uri.transport !== "tls" || uri.host !== "host") throw new Error("unexpected");
 * if (uri.path !== "/system" || uri.params.get("stateDir") !== "/tmp/x") throw new Error("unexpected");
 * ```
 */
export function parseUri(text: string): ConnectionUri {
  if (typeof text !== "string") throw new TypeError(`Invalid connection URI: expected a string, got ${typeof text}`);
  const fail = (why: string): never => {
    throw new TypeError(`Invalid connection URI ${JSON.stringify(text)}: ${why}`);
  };
  if (text.length === 0) fail("it is empty");
  if (CONTROL.test(text)) fail("it contains a control character");
  if (/\s/.test(text)) fail("it contains white space (percent-encode it as %20)");
  if (!URI_CHARS.test(text)) fail("it contains characters that must be percent-encoded");
  const colon = text.indexOf(":");
  if (colon <= 0) fail(`it has no scheme (expected "scheme://host/path", such as "test:///default")`);
  const fullScheme = text.slice(0, colon);
  if (!SCHEME.test(fullScheme)) {
    fail(`scheme "${fullScheme}" must start with a letter and hold only letters, digits, ".", "-" and one "+"`);
  }
  if (!text.startsWith("//", colon + 1)) fail(`"//" must follow "${fullScheme}:" (such as "${fullScheme}:///path")`);
  if (text.includes("#")) fail("fragments (#) are not allowed");
  const rest = text.slice(colon + 3);
  const pathStart = rest.search(/[/?]/);
  const authority = pathStart < 0 ? rest : rest.slice(0, pathStart);
  const afterAuthority = pathStart < 0 ? "" : rest.slice(pathStart);
  const queryStart = afterAuthority.indexOf("?");
  const rawPath = queryStart < 0 ? afterAuthority : afterAuthority.slice(0, queryStart);
  const rawQuery = queryStart < 0 ? undefined : afterAuthority.slice(queryStart + 1);
  const [scheme, transport] = fullScheme.toLowerCase().split("+") as [string, string | undefined];
  return Object.freeze({
    href: text,
    scheme,
    ...(transport === undefined ? {} : { transport }),
    ...parseAuthority(authority, fail),
    path: decode(rawPath, "path", fail),
    params: parseQuery(rawQuery, fail),
  });
}

function parseAuthority(
  authority: string,
  fail: (why: string) => never,
): { user?: string; host: string; port?: number } {
  const at = authority.lastIndexOf("@");
  const rawUser = at < 0 ? undefined : authority.slice(0, at);
  const hostPort = at < 0 ? authority : authority.slice(at + 1);
  const portMatch = /:(\d*)$/.exec(hostPort.endsWith("]") ? "" : hostPort);
  const host = portMatch ? hostPort.slice(0, portMatch.index) : hostPort;
  if (!HOST.test(host)) fail(`host "${host}" is not a host name or a bracketed IPv6 address`);
  const result: { user?: string; host: string; port?: number } = { host };
  if (rawUser !== undefined) {
    if (!USER.test(rawUser)) fail(`user "${rawUser}" is empty or holds characters that must be percent-encoded`);
    result.user = decode(rawUser, "user", fail);
  }
  if (portMatch) {
    const port = Number(portMatch[1]);
    if (portMatch[1] === "" || port < 1 || port > 65535) fail(`port "${portMatch[1]}" is not a number from 1 to 65535`);
    result.port = port;
  }
  return result;
}

function parseQuery(rawQuery: string | undefined, fail: (why: string) => never): ReadonlyMap<string, string> {
  const params = new Map<string, string>();
  if (rawQuery === undefined || rawQuery === "") return params;
  for (const pair of rawQuery.split("&")) {
    if (pair === "") continue; // tolerate "a=1&&b=2" and a trailing "&", as libvirt does
    const eq = pair.indexOf("=");
    const name = decode(eq < 0 ? pair : pair.slice(0, eq), "parameter name", fail);
    const value = eq < 0 ? "" : decode(pair.slice(eq + 1), `parameter "${name}"`, fail);
    if (name === "") fail(`a parameter has no name ("${pair}")`);
    if (params.has(name)) fail(`parameter "${name}" is given twice`);
    params.set(name, value);
  }
  return params;
}

function decode(raw: string, what: string, fail: (why: string) => never): string {
  if (/%(?![0-9a-f]{2})/i.test(raw)) fail(`${what} has a "%" not followed by two hex digits`);
  let decoded = "";
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    fail(`${what} percent-decodes to invalid UTF-8`);
  }
  // A decoded NUL or newline in a path would reach file names and command lines.
  if (CONTROL.test(decoded)) fail(`${what} decodes to a control character`);
  return decoded;
}
