/**
 * An `iscsi` pool in libvirt pool XML, both ways:
 *
 * - `<source><host name port>` is `host` and `port`, `<source><device path>` the target IQN;
 * - `<source><initiator><iqn name>` is `initiator`;
 * - `<source><auth type='chap' username><secret usage|uuid/></auth>` is `auth`. A password is never
 *   written: the secret is the one `auth.secret` names, else `virtkit-iscsi-POOL` (a libvirtd looks it
 *   up among its secret objects when the pool starts). Read back, `auth` names the secret and has no
 *   password;
 * - `auth.mutual` (libvirt has no mutual CHAP) is `<virtkit:mutual_auth username><virtkit:secret .../>`
 *   at the pool's top level, in virtkit's namespace, its secret `virtkit-iscsi-POOL-mutual` unless named;
 * - `<target><path>/dev/disk/by-path</path>` is libvirt's default, written and expected.
 *
 * @module
 */
import { defaultSecretUsage, type IscsiSecretRef } from "../config/iscsi_auth.ts";
import type { IscsiPoolConfig } from "../config/pool_config.ts";
import type { ElementReader } from "./element_reader.ts";
import { virtkitName } from "./pool_namespace.ts";
import type { XmlNodeSpec } from "./xml_document.ts";

const MUTUAL_AUTH = "mutual_auth";
const BY_PATH = "/dev/disk/by-path";

/** What an `iscsi` pool adds to the pool element: its `<source>`, `<target>`, and virtkit's elements. */
export interface IscsiPoolNodes {
  /** Children after `<name>` and `<uuid>`. */
  readonly children: readonly XmlNodeSpec[];
  /** Whether they use virtkit's namespace (the root must bind it). */
  readonly namespaced: boolean;
}

/**
 * The elements of an `iscsi` pool, below the pool element.
 *
 * @param c The checked config.
 * @returns The children and whether virtkit's namespace is used.
 * @example
 * ```ts
 * import { iscsiPoolNodes } from "./iscsi_pool_xml.ts";
 * const nodes = iscsiPoolNodes({ name: "san", type: "iscsi", host: "10.0.0.5", target: "iqn.2026-01.org.example:a", auth: { type: "chap", username: "alice", password: "pw" } });
 * const text = JSON.stringify(nodes.children);
 * if (text.includes("pw") || !text.includes("virtkit-iscsi-san") || nodes.namespaced) throw new Error(text);
 * ```
 */
export function iscsiPoolNodes(c: IscsiPoolConfig): IscsiPoolNodes {
  const source: XmlNodeSpec[] = [{ name: "host", attributes: { name: c.host, port: c.port } }, { name: "device", attributes: { path: c.target } }];
  if (c.initiator !== undefined) source.push({ name: "initiator", children: [{ name: "iqn", attributes: { name: c.initiator } }] });
  if (c.auth !== undefined) {
    source.push({
      name: "auth",
      attributes: { type: c.auth.type, username: c.auth.username },
      children: [secretNode("secret", c.auth.secret ?? { usage: defaultSecretUsage(c.name, "initiator") })],
    });
  }
  const mutual = c.auth?.mutual;
  const extra: XmlNodeSpec[] = mutual === undefined ? [] : [{
    name: `virtkit:${MUTUAL_AUTH}`,
    attributes: { username: mutual.username },
    children: [secretNode("virtkit:secret", mutual.secret ?? { usage: defaultSecretUsage(c.name, "mutual") })],
  }];
  return {
    children: [{ name: "source", children: source }, { name: "target", children: [{ name: "path", text: BY_PATH }] }, ...extra],
    namespaced: mutual !== undefined,
  };
}

function secretNode(name: string, ref: IscsiSecretRef): XmlNodeSpec {
  return { name, attributes: "uuid" in ref ? { uuid: ref.uuid } : { usage: ref.usage } };
}

/**
 * Reads an `iscsi` pool's fields (everything but name, type and uuid) for `checkPoolConfig`.
 *
 * @param root The pool element.
 * @param source Its `<source>`.
 * @param targetPath Its `<target><path>`, when given.
 * @returns The fields.
 * @throws {TypeError} For a missing host or device, a malformed port, auth or initiator.
 * @example
 * ```ts
 * import { poolFromXml } from "./pool_xml.ts";
 * const { config } = poolFromXml(`<pool type='iscsi'><name>san</name><source><host name='10.0.0.5'/><device path='iqn.2026-01.org.example:a'/>
 *   <initiator><iqn name='iqn.2026-01.org.example:me'/></initiator><auth type='chap' username='alice'><secret usage='san-chap'/></auth></source></pool>`);
 * if (config.type !== "iscsi" || config.initiator !== "iqn.2026-01.org.example:me" || JSON.stringify(config.auth) !== '{"type":"chap","username":"alice","secret":{"usage":"san-chap"}}') throw new Error(JSON.stringify(config));
 * ```
 */
export function readIscsiPool(root: ElementReader, source: ElementReader | undefined, targetPath: string | undefined): Record<string, unknown> {
  if (source === undefined) throw root.error("(iscsi) has no <source>");
  const host = source.child("host");
  if (host === undefined) throw source.error("has no <host name=...>");
  const hostName = host.requireAttr("name");
  const port = host.attr("port");
  host.finish();
  const device = source.child("device");
  if (device === undefined) throw source.error("has no <device path=IQN>");
  const iqn = device.requireAttr("path");
  device.finish();
  const initiator = readInitiator(source);
  const auth = readAuth(source);
  source.finish();
  const mutual = readMutual(root);
  if (mutual !== undefined && auth === undefined) throw root.error(`has <${MUTUAL_AUTH}> (the target's CHAP account) but no <source><auth> (ours)`);
  if (port !== undefined && !(port !== "" && [...port].every((ch) => ch >= "0" && ch <= "9"))) throw root.error(`has port ${JSON.stringify(port)}, expected a number`, "source/host@port");
  if (targetPath !== undefined && targetPath !== BY_PATH) root.warn("target/path", `"${targetPath}" is not modeled (virtkit's initiator makes no device nodes); dropped`);
  return {
    host: hostName,
    ...(port === undefined ? {} : { port: Number(port) }),
    target: iqn,
    ...(initiator === undefined ? {} : { initiator }),
    ...(auth === undefined ? {} : { auth: { ...auth, ...(mutual === undefined ? {} : { mutual }) } }),
  };
}

function readInitiator(source: ElementReader): string | undefined {
  const initiator = source.child("initiator");
  if (initiator === undefined) return undefined;
  const iqn = initiator.child("iqn");
  if (iqn === undefined) throw initiator.error("has no <iqn name=...>");
  const name = iqn.requireAttr("name");
  iqn.finish();
  initiator.finish();
  return name;
}

function readAuth(source: ElementReader): { type: string; username: string; secret: IscsiSecretRef } | undefined {
  const auth = source.child("auth");
  if (auth === undefined) return undefined;
  const type = auth.requireAttr("type");
  if (type !== "chap") throw auth.error(`has type "${type}"; an iscsi pool's auth is "chap"`);
  const username = auth.requireAttr("username");
  const secret = readSecret(auth, "secret");
  auth.finish();
  return { type, username, secret };
}

function readMutual(root: ElementReader): { username: string; secret: IscsiSecretRef } | undefined {
  const name = virtkitName(root, MUTUAL_AUTH);
  const mutual = name === undefined ? undefined : root.child(name);
  if (mutual === undefined) return undefined;
  const username = mutual.requireAttr("username");
  const secret = readSecret(mutual, `${name!.slice(0, name!.indexOf(":"))}:secret`);
  mutual.finish();
  return { username, secret };
}

/** `<secret usage='NAME'/>` or `<secret uuid='UUID'/>`: one of the two, as libvirt requires. */
function readSecret(parent: ElementReader, name: string): IscsiSecretRef {
  const secret = parent.child(name);
  if (secret === undefined) throw parent.error(`has no <${name} usage=... or uuid=...> (pool XML holds no password, only the secret that has it)`);
  const usage = secret.attr("usage");
  const uuid = secret.attr("uuid");
  secret.ignoreAttrs("type"); // libvirt's own dumps may say which kind of secret; an iscsi pool's is always iscsi
  secret.finish();
  if ((usage === undefined) === (uuid === undefined)) throw secret.error("needs a usage or a uuid attribute (one of them)");
  return uuid !== undefined ? { uuid } : { usage: usage! };
}
