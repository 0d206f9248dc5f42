/**
 * libvirt's REMOTE program as virtkitd serves it: every served procedure by number, with the read-only
 * table and the names for errors. A procedure not listed answers VIR_ERR_NO_SUPPORT naming it.
 *
 * @module
 */
import { REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION } from "../../drivers/remote/rpc/packet.ts";
import { REMOTE_PROCEDURES } from "../../drivers/remote/rpc/protocol/mod.ts";
import type { ServedProcedure } from "../dispatch.ts";
import { accessOf, procedureName } from "../procedure_access.ts";
import type { ServedProgram } from "../session.ts";
import { BLOCK_COPY_PROCEDURES } from "./block_copy_procs.ts";
import { BLOCK_JOB_PROCEDURES } from "./block_job_procs.ts";
import { CONNECT_PROCEDURES } from "./connect_procs.ts";
import { DOMAIN_PROCEDURES } from "./domain_procs.ts";
import { DOMAIN_XML_PROCEDURES } from "./domain_xml_procs.ts";
import { EVENT_PROCEDURES } from "./event_procs.ts";
import { POOL_EVENT_PROCEDURES } from "./pool_event_procs.ts";
import { POOL_PROCEDURES } from "./pool_procs.ts";
import { STREAM_PROCEDURES } from "./stream_procs.ts";
import { VOLUME_PROCEDURES } from "./volume_procs.ts";

/**
 * Builds the served REMOTE program from groups of procedures.
 *
 * @param groups Lists of served procedures; a number served twice is a programming error.
 * @returns The program.
 * @throws {Error} When two entries serve the same number.
 * @example
 * ```ts
 * import { remoteProgram, SERVED_REMOTE_GROUPS } from "./program.ts";
 * const program = remoteProgram(...SERVED_REMOTE_GROUPS);
 * if (!program.procedures.has(273) || program.nameOf(7) !== "REMOTE_PROC_CONNECT_GET_CAPABILITIES") throw new Error("unexpected");
 * let twice = false;
 * try { remoteProgram(SERVED_REMOTE_GROUPS[0]!, SERVED_REMOTE_GROUPS[0]!); } catch { twice = true; }
 * if (!twice) throw new Error("a number served twice is refused");
 * ```
 */
export function remoteProgram(...groups: ReadonlyArray<readonly ServedProcedure[]>): ServedProgram {
  const procedures = new Map<number, ServedProcedure>();
  for (const served of groups.flat()) {
    if (procedures.has(served.proc.number)) throw new Error(`REMOTE procedure ${served.proc.number} is served twice`);
    procedures.set(served.proc.number, served);
  }
  return {
    program: REMOTE_PROGRAM,
    version: REMOTE_PROTOCOL_VERSION,
    procedures,
    accessOf,
    nameOf: (proc) => {
      const known = REMOTE_PROCEDURES.get(proc);
      return known ? `REMOTE_PROC_${known.name}` : procedureName(proc);
    },
  };
}

/** Every REMOTE procedure virtkitd serves. */
export const SERVED_REMOTE_GROUPS: ReadonlyArray<readonly ServedProcedure[]> = [
  CONNECT_PROCEDURES,
  DOMAIN_PROCEDURES,
  DOMAIN_XML_PROCEDURES,
  BLOCK_JOB_PROCEDURES,
  BLOCK_COPY_PROCEDURES,
  EVENT_PROCEDURES,
  POOL_PROCEDURES,
  POOL_EVENT_PROCEDURES,
  VOLUME_PROCEDURES,
  STREAM_PROCEDURES,
];
