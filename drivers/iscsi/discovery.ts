/**
 * SendTargets discovery (RFC 7143 §13.3, Appendix C): which targets a portal offers, as
 * `iscsiadm -m discovery -t sendtargets` and `iscsi-ls` list them and as libvirt's
 * `virConnectFindStoragePoolSources` finds `iscsi` pool sources.
 *
 * @module
 */
import type { SignalOptions } from "../../core/options.ts";
import { defaultInitiatorName } from "./config.ts";
import { type ChapCredentials, login } from "./initiator/login.ts";

/** A target a portal offers. */
export interface DiscoveredTarget {
  /** Its IQN. */
  readonly name: string;
  /** Where it can be reached: `host:port,tpgt` as the target reports them. */
  readonly addresses: readonly string[];
}

/** What {@linkcode discoverTargets} takes. */
export interface DiscoveryOptions extends SignalOptions {
  /** Portal host. */
  readonly host: string;
  /** Portal port (default 3260). */
  readonly port?: number;
  /** Our IQN (default: the host's, see `defaultInitiatorName`). */
  readonly initiatorName?: string;
  /** CHAP credentials for discovery, when the portal wants them. */
  readonly auth?: ChapCredentials;
  /** Bound on connect, login and the answer (default 10 s). */
  readonly timeoutMs?: number;
}

/**
 * Asks a portal for its targets in a discovery session.
 *
 * @param options The portal and how to log in.
 * @returns The targets, in the order the portal lists them.
 * @throws {ConnectError} When the portal cannot be reached or refuses the login.
 * @example Nothing listens on port 1: a `ConnectError`
 * ```ts
 * import { discoverTargets } from "./discovery.ts";
 * const error = await discoverTargets({ host: "127.0.0.1", port: 1 }).then(() => undefined, (e) => e);
 * if ((error as { code?: string }).code !== "connect-failed") throw new Error("unexpected");
 * ```
 */
export async function discoverTargets(options: DiscoveryOptions): Promise<DiscoveredTarget[]> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const session = await login({
    host: options.host,
    port: options.port ?? 3260,
    initiatorName: options.initiatorName ?? defaultInitiatorName(),
    loginTimeoutMs: timeoutMs,
    commandTimeoutMs: timeoutMs,
    keepaliveIntervalMs: 0,
    ...(options.auth ? { auth: options.auth } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  try {
    const targets: Array<{ name: string; addresses: string[] }> = [];
    for (const [key, value] of await session.text([["SendTargets", "All"]])) {
      if (key === "TargetName") targets.push({ name: value, addresses: [] });
      else if (key === "TargetAddress") targets.at(-1)?.addresses.push(value);
    }
    return targets;
  } finally {
    await session.logout();
  }
}
