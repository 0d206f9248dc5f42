/**
 * Opening and closing a libvirt connection over RPC, as libvirt's own client does (observed order,
 * reference/libvirt-rpc.md §2): AUTH_LIST, the keepalive probe, CONNECT_OPEN, the event-callback probe;
 * on close CONNECT_CLOSE. Only the `none` auth type is implemented: a daemon that demands SASL or polkit
 * gets a clear `UnsupportedError`.
 *
 * @module
 */
import { ConnectError, UnsupportedError } from "../../core/errors.ts";
import { RpcClient } from "./rpc/client.ts";
import { AUTH_LIST, AuthType, CONNECT_CLOSE, CONNECT_OPEN, CONNECT_SUPPORTS_FEATURE, Feature, OpenFlags } from "./rpc/protocol/connect.ts";
import { LibvirtErrorCode, libvirtErrorOf } from "./rpc/errors.ts";
import { openTransport } from "./transport.ts";
import type { RemoteTarget } from "./uri.ts";

/** libvirt's client keepalive: a PING after 5 s of silence, dead after 5 unanswered. */
export const KEEPALIVE_INTERVAL_MS = 5_000;
/** Unanswered PINGs before the connection is closed. */
export const KEEPALIVE_COUNT = 5;

/** An open RPC session. */
export interface RemoteSession {
  /** The RPC client. */
  readonly client: RpcClient;
  /** Whether the daemon sends callback-id events (feature 14). */
  readonly eventCallbacks: boolean;
  /** Whether keepalive runs. */
  readonly keepalive: boolean;
  /** Sends CONNECT_CLOSE (best effort) and closes the socket. */
  close(): Promise<void>;
}

/**
 * Connects and opens `target.name` on the daemon.
 *
 * @param target Where to.
 * @param options Signal; keepalive timing (libvirt's 5 s x 5 by default).
 * @returns The session.
 * @throws {ConnectError} When the daemon cannot be reached or refuses the open.
 * @throws {UnsupportedError} When the daemon only offers SASL or polkit authentication.
 * @example
 * ```ts
 * import { openSession } from "./session.ts";
 * let code = "";
 * try { await openSession({ transport: "unix", socketPath: "/nonexistent/sock", name: "test:///default", readOnly: false }); }
 * catch (error) { code = (error as { code: string }).code; }
 * if (code !== "connect-failed") throw new Error("unexpected");
 * ```
 */
export async function openSession(
  target: RemoteTarget,
  options: { signal?: AbortSignal; keepaliveIntervalMs?: number; keepaliveCount?: number } = {},
): Promise<RemoteSession> {
  const channel = await openTransport(target, options.signal);
  const client = new RpcClient(channel, {
    peerName: target.transport === "unix" ? target.socketPath : `${target.host}:${target.port}`,
  });
  const call = { signal: options.signal };
  try {
    let types: number[] = [];
    try {
      types = await client.call(AUTH_LIST, undefined, call);
    } catch (error) {
      // libvirt's client: NO_SUPPORT here means an old daemon without authentication.
      if (libvirtErrorOf(error)?.code !== LibvirtErrorCode.NO_SUPPORT) throw error;
    }
    if (types.length > 0 && !types.includes(AuthType.NONE)) {
      const names = types.map((t) => ({ 1: "sasl", 2: "polkit" } as Record<number, string>)[t] ?? String(t));
      throw new UnsupportedError("authenticate", { driver: "remote", detail: `the daemon requires ${names.join(" or ")} authentication; only "none" is implemented` });
    }
    const keepalive = (await client.call(CONNECT_SUPPORTS_FEATURE, Feature.PROGRAM_KEEPALIVE, call)) === 1;
    await client.call(CONNECT_OPEN, { name: target.name, flags: target.readOnly ? OpenFlags.READ_ONLY : 0 }, { ...call, operation: `open "${target.name}"` });
    const eventCallbacks = (await client.call(CONNECT_SUPPORTS_FEATURE, Feature.REMOTE_EVENT_CALLBACK, call)) === 1;
    if (keepalive) client.startKeepalive(options.keepaliveIntervalMs ?? KEEPALIVE_INTERVAL_MS, options.keepaliveCount ?? KEEPALIVE_COUNT);
    let closing: Promise<void> | undefined;
    return {
      client,
      eventCallbacks,
      keepalive,
      close: () =>
        (closing ??= (async () => {
          if (!client.closed) await client.call(CONNECT_CLOSE, undefined).catch(() => {});
          client.close();
        })()),
    };
  } catch (error) {
    client.close();
    if (error instanceof UnsupportedError || error instanceof ConnectError) throw error;
    if (options.signal?.aborted && error === options.signal.reason) throw error;
    throw new ConnectError(`Cannot open "${target.name}": ${(error as Error).message}`, { driver: "remote", cause: error });
  }
}
