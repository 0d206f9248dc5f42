/**
 * The QMP client of the `qemu` driver: a unix-socket transport, the client, its errors and the wire
 * types. Test fakes live in `./testing/mod.ts`.
 *
 * @example
 * ```ts
 * import { QmpClient, QmpDisconnectedError } from "./mod.ts";
 * import { createFakeQmpPeer } from "./testing/mod.ts";
 * const peer = createFakeQmpPeer();
 * peer.expect("query-jobs", { return: [] }, { hold: true });
 * const qmp = await QmpClient.connect(peer.transport);
 * const pending = qmp.execute("query-jobs").catch((error) => error);
 * peer.hangUp();
 * if (!((await pending) instanceof QmpDisconnectedError)) throw new Error("unexpected");
 * ```
 *
 * @module
 */
export { QmpClient, type QmpClientOptions, type QmpWaitOptions } from "./client.ts";
export { QmpDisconnectedError, QmpProtocolError } from "./errors.ts";
export { matchesEventFilter, type QmpEventFilter, type QmpEventListener, QmpEventRouter } from "./event_router.ts";
export { DEFAULT_MAX_LINE_BYTES, LineSplitter, type LineSplitterOptions } from "./line_reader.ts";
export { connectUnixSocket, type QmpTransport, type UnixSocketOptions } from "./transport.ts";
export * from "./types.ts";
export { QmpError } from "../../../core/errors.ts";
