/**
 * `conn.testing` of a shared `test:` connection over virtkit's program, so a remote client's tests can
 * inject faults into the daemon's jobs and calls (`failJob`, `failNext`), load fixtures and write as a
 * guest. Errors travel as their message and are raised on the daemon as plain `Error`s.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { UnsupportedError } from "../core/errors.ts";
import { LibvirtErrorCode } from "../drivers/remote/rpc/errors.ts";
import { VIRTKIT_TESTING } from "../drivers/remote/rpc/protocol/virtkit.ts";
import { RpcFault, serve, type ServedProcedure } from "./dispatch.ts";
import { connOf } from "./remote/domain_refs.ts";
import { parseJsonObject } from "./virtkit_volume_procs.ts";

const text = (value: unknown, what: string): string => {
  if (typeof value !== "string") throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: ${what} must be a string`);
  return value;
};

/** The testing procedure, for the program's table (it changes something: write access). */
export const VIRTKIT_TESTING_PROCEDURE: ServedProcedure = serve(VIRTKIT_TESTING, async (ctx, argument) => {
  const request = parseJsonObject(argument, "the testing request");
  const testing = connOf(ctx).conn.testing;
  if (!testing) throw new UnsupportedError("testing", { driver: "virtkitd", detail: "only test: connections have fault injection" });
  switch (request.operation) {
    case "failNext":
      return testing.failNext(text(request.target, "target"), new Error(text(request.message, "message")));
    case "failJob":
      return testing.failJob(text(request.id, "id"), new Error(text(request.message, "message")), request.atBytes === undefined ? {} : { atBytes: request.atBytes as number });
    case "load":
      return await testing.load(request.fixture);
    case "guestWrite":
      return await testing.guestWrite(text(request.domain, "domain"), text(request.disk, "disk"), request.offset as number, new Uint8Array(Buffer.from(text(request.base64, "base64"), "base64")));
    default:
      throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: unknown testing operation ${JSON.stringify(request.operation)}`);
  }
});
