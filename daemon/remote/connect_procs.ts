/**
 * The handshake and connection-level procedures of libvirt's REMOTE program: AUTH_LIST, the feature
 * probes, CONNECT_OPEN (shared connection, read-only flag), CLOSE, the close callback, and the small
 * connection queries (type, versions, host name, URI).
 *
 * @module
 */
import { cpus, hostname, totalmem } from "node:os";
import process from "node:process";
import { NODE_GET_INFO } from "../../drivers/remote/rpc/protocol/host_queries.ts";
import { LibvirtErrorCode } from "../../drivers/remote/rpc/errors.ts";
import {
  AUTH_LIST,
  AuthType,
  CONNECT_CLOSE,
  CONNECT_GET_HOSTNAME,
  CONNECT_GET_LIB_VERSION,
  CONNECT_GET_TYPE,
  CONNECT_GET_URI,
  CONNECT_GET_VERSION,
  CONNECT_OPEN,
  CONNECT_REGISTER_CLOSE_CALLBACK,
  CONNECT_SUPPORTS_FEATURE,
  CONNECT_UNREGISTER_CLOSE_CALLBACK,
  Feature,
  OpenFlags,
} from "../../drivers/remote/rpc/protocol/connect.ts";
import { RpcFault, serve, type ServedProcedure } from "../dispatch.ts";
import { sharedStateOf } from "../shared_state.ts";
import { connOf } from "./domain_refs.ts";

/** The libvirt version whose protocol the daemon speaks (what CONNECT_GET_LIB_VERSION reports): 9.0.0. */
export const SPOKEN_LIBVIRT_VERSION = 9_000_000;

// Features the daemon answers yes to. Keepalive (10): PINGs are answered with PONG at once. Callback
// events (14) and the close callback (15), as libvirtd. Typed-param strings (9): block copy sends them.
const SUPPORTED_FEATURES = new Set<number>([
  Feature.TYPED_PARAM_STRING,
  Feature.PROGRAM_KEEPALIVE,
  Feature.REMOTE_EVENT_CALLBACK,
  Feature.REMOTE_CLOSE_CALLBACK,
]);

/** libvirt's driver name for a scheme (`virConnectGetType`). */
function typeName(driver: string): string {
  return driver === "qemu" ? "QEMU" : driver === "test" ? "TEST" : driver.toUpperCase();
}

/** The handshake and connection procedures. */
export const CONNECT_PROCEDURES: readonly ServedProcedure[] = [
  serve(AUTH_LIST, () => [AuthType.NONE], { beforeOpen: true }),
  serve(CONNECT_SUPPORTS_FEATURE, (ctx, feature) => {
    if (feature === Feature.PROGRAM_KEEPALIVE) ctx.session.keepalive = true;
    return SUPPORTED_FEATURES.has(feature) ? 1 : 0;
  }, { beforeOpen: true }),
  serve(CONNECT_OPEN, async (ctx, { name, flags }) => {
    const { session } = ctx;
    if (session.open) throw new RpcFault(LibvirtErrorCode.INTERNAL_ERROR, "connection already open");
    if ((flags & ~OpenFlags.READ_ONLY) !== 0) {
      throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `unsupported flags (0x${(flags & ~OpenFlags.READ_ONLY).toString(16)}) in function virConnectOpen`);
    }
    const uri = name ?? session.table.defaultUri;
    let conn;
    try {
      conn = await session.table.acquire(uri);
    } catch (error) {
      if (error instanceof TypeError) throw new RpcFault(LibvirtErrorCode.INVALID_ARG, error.message);
      throw new RpcFault(LibvirtErrorCode.NO_CONNECT, error instanceof Error ? error.message : String(error));
    }
    session.readOnly = (flags & OpenFlags.READ_ONLY) !== 0;
    session.open = { uri: conn.uri, conn, shared: sharedStateOf(conn) };
  }, { beforeOpen: true }),
  // The client closes its socket right after; the session's cleanups run then.
  serve(CONNECT_CLOSE, () => {}),
  serve(CONNECT_REGISTER_CLOSE_CALLBACK, () => {}),
  serve(CONNECT_UNREGISTER_CLOSE_CALLBACK, () => {}),
  serve(CONNECT_GET_URI, (ctx) => connOf(ctx).uri),
  serve(CONNECT_GET_TYPE, (ctx) => typeName(connOf(ctx).conn.driver)),
  // virtkit 0.1.0 in libvirt's major * 1e6 + minor * 1e3 + micro encoding.
  serve(CONNECT_GET_VERSION, () => 1_000),
  serve(CONNECT_GET_LIB_VERSION, () => SPOKEN_LIBVIRT_VERSION),
  serve(CONNECT_GET_HOSTNAME, () => hostname()),
  // `virsh nodeinfo`: this host as one NUMA node and one socket, each CPU a core.
  serve(NODE_GET_INFO, () => {
    const list = cpus();
    return {
      model: process.arch === "x64" ? "x86_64" : process.arch,
      memory: Math.floor(totalmem() / 1024),
      cpus: list.length,
      mhz: list[0]?.speed ?? 0,
      nodes: 1,
      sockets: 1,
      cores: list.length,
      threads: 1,
    };
  }),
];
