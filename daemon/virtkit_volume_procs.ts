/**
 * The volume procedures of virtkit's program: jobs libvirt's protocol cannot express (a capped clone or
 * wipe, allocate, an offline pull), started at once with their job's info as the reply, and a volume's
 * extents. The job then lives in the shared connection's job list like any other.
 *
 * @module
 */
import type { JobInfo } from "../core/job.ts";
import type { Volume } from "../core/volume.ts";
import { LibvirtErrorCode } from "../drivers/remote/rpc/errors.ts";
import { VIRTKIT_JOB_START, VIRTKIT_VOLUME_EXTENTS, type VolumeJobRequest } from "../drivers/remote/rpc/protocol/virtkit.ts";
import { type CallContext, RpcFault, serve, type ServedProcedure } from "./dispatch.ts";
import { connOf } from "./remote/domain_refs.ts";

const OPERATIONS = new Set(["clone", "wipe", "pull", "allocate"]);

/**
 * Parses a JSON object argument of the program, or answers INVALID_ARG.
 *
 * @param text The argument.
 * @param what What it is, for the message.
 * @returns The object.
 * @example
 * ```ts
 * import { parseJsonObject } from "./virtkit_volume_procs.ts";
 * if (parseJsonObject('{"a":1}', "x").a !== 1) throw new Error("unexpected");
 * let code = 0;
 * try { parseJsonObject("[1]", "x"); } catch (error) { code = (error as { libvirtCode: number }).libvirtCode; }
 * if (code !== 8) throw new Error(`expected INVALID_ARG, got ${code}`);
 * ```
 */
export function parseJsonObject(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: ${what} is not JSON: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: ${what} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

async function volumeNamed(ctx: CallContext, request: Record<string, unknown>): Promise<Volume> {
  const { pool, volume } = request;
  if (typeof pool !== "string" || typeof volume !== "string") {
    throw new RpcFault(LibvirtErrorCode.INVALID_ARG, "invalid argument: pool and volume must be names");
  }
  return await (await connOf(ctx).conn.pools.get(pool)).volumes.get(volume);
}

/** Options the core call validates itself (bad sizes are its RangeError/TypeError, sent back as such). */
function numbers(request: Record<string, unknown>, keys: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of keys) if (request[key] !== undefined) out[key] = request[key] as number;
  return out;
}

async function startJob(ctx: CallContext, text: string): Promise<JobInfo> {
  const request = parseJsonObject(text, "the job request") as Partial<VolumeJobRequest> & Record<string, unknown>;
  if (typeof request.operation !== "string" || !OPERATIONS.has(request.operation)) {
    throw new RpcFault(LibvirtErrorCode.INVALID_ARG, `invalid argument: unknown volume job operation ${JSON.stringify(request.operation)}`);
  }
  const source = await volumeNamed(ctx, request);
  switch (request.operation) {
    case "clone": {
      const pool = await connOf(ctx).conn.pools.get(source.pool);
      const format = request.format === undefined ? {} : { format: request.format as "raw" | "qcow2" };
      return await (await pool.volumes.clone(source, { name: request.name as string, ...format, ...numbers(request, ["bandwidth"]) })).info();
    }
    case "wipe":
      return await (await source.wipe(numbers(request, ["bandwidth"]))).info();
    case "pull":
      return await (await source.pull(numbers(request, ["bandwidth"]))).info();
    default:
      return await (await source.allocate(numbers(request, ["offset", "length", "bandwidth"]))).info();
  }
}

async function extentsOf(ctx: CallContext, text: string): Promise<string> {
  const request = parseJsonObject(text, "the extents request");
  const volume = await volumeNamed(ctx, request);
  const extents = [];
  for await (const extent of volume.extents(numbers(request, ["offset", "length"]))) extents.push(extent);
  return JSON.stringify(extents);
}

/** The volume procedures, for the program's table (VIRTKIT_JOB_START changes something; extents only read). */
export const VIRTKIT_VOLUME_PROCEDURES: readonly ServedProcedure[] = [
  serve(VIRTKIT_JOB_START, async (ctx, text) => JSON.stringify(await startJob(ctx, text))),
  serve(VIRTKIT_VOLUME_EXTENTS, (ctx, text) => extentsOf(ctx, text)),
];
