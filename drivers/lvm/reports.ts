/**
 * Parsing of LVM2's `--reportformat json` output (`vgs`, `lvs`, `pvs` with `--units b --nosuffix`), which
 * is `{"report":[{"vg":[{...}]}]}` with every value a string. A report that does not have that shape is a
 * `VirtError` quoting the command, never a silently empty list.
 *
 * @module
 */
import { VirtError } from "../../core/errors.ts";

const DRIVER = "logical";

/** One volume group, sizes in bytes. */
export interface VgReport {
  /** VG name. */
  readonly name: string;
  /** VG UUID. */
  readonly uuid: string;
  /** Total size. */
  readonly sizeBytes: number;
  /** Unallocated space. */
  readonly freeBytes: number;
  /** Extent size: every LV size is a multiple of it. */
  readonly extentBytes: number;
}

/** One logical volume, sizes in bytes. */
export interface LvReport {
  /** LV name. */
  readonly name: string;
  /** LV UUID (libvirt's volume key). */
  readonly uuid: string;
  /** Its device path, `/dev/VG/LV`. */
  readonly path: string;
  /** Its size. */
  readonly sizeBytes: number;
  /** `lv_attr`, e.g. `-wi-XX----`; its first letter is the volume type (`t` thin pool, `V` thin volume). */
  readonly attr: string;
  /** The thin pool of a thin volume, else `""`. */
  readonly poolLv: string;
  /** Percent of a thin volume's size that is allocated (`undefined` when LVM does not know, as without device-mapper). */
  readonly dataPercent: number | undefined;
  /** `linear`, `striped`, `thin`, `thin-pool`, ... */
  readonly segtype: string;
}

/** One physical volume. */
export interface PvReport {
  /** Device path. */
  readonly name: string;
  /** Its volume group, `""` when in none. */
  readonly vgName: string;
}

/** The `vgs -o` fields {@linkcode parseVgs} expects. */
export const VG_FIELDS = "vg_name,vg_uuid,vg_size,vg_free,vg_extent_size";
/** The `lvs -o` fields {@linkcode parseLvs} expects. */
export const LV_FIELDS = "lv_name,lv_uuid,lv_path,lv_size,lv_attr,pool_lv,data_percent,segtype";
/** The `pvs -o` fields {@linkcode parsePvs} expects. */
export const PV_FIELDS = "pv_name,vg_name";

function rows(stdout: string, section: "vg" | "lv" | "pv", command: string): Array<Record<string, unknown>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch (error) {
    throw new VirtError("internal", `Cannot parse the output of "${command}": it is not JSON`, { driver: DRIVER, cause: error });
  }
  const reports = (parsed as { report?: unknown })?.report;
  if (!Array.isArray(reports)) throw new VirtError("internal", `Cannot parse the output of "${command}": no "report" array`, { driver: DRIVER });
  const out: Array<Record<string, unknown>> = [];
  for (const report of reports) {
    const list = (report as Record<string, unknown>)?.[section];
    if (!Array.isArray(list)) throw new VirtError("internal", `Cannot parse the output of "${command}": a report has no "${section}" list`, { driver: DRIVER });
    out.push(...(list as Array<Record<string, unknown>>));
  }
  return out;
}

function text(row: Record<string, unknown>, field: string, command: string): string {
  const value = row[field];
  if (typeof value !== "string") throw new VirtError("internal", `Cannot parse the output of "${command}": field ${field} is missing`, { driver: DRIVER });
  return value;
}

function bytes(row: Record<string, unknown>, field: string, command: string): number {
  const value = text(row, field, command);
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new VirtError("internal", `Cannot parse the output of "${command}": ${field} ${JSON.stringify(value)} is not a byte count`, { driver: DRIVER });
  }
  return n;
}

/**
 * Parses `vgs --reportformat json --units b --nosuffix -o VG_FIELDS`.
 *
 * @param stdout What vgs printed.
 * @param command The command line, for messages.
 * @returns The volume groups.
 * @throws {VirtError} When the output does not have the expected shape.
 * @example
 * ```ts
 * import { parseVgs } from "./reports.ts";
 * const [vg] = parseVgs('{"report":[{"vg":[{"vg_name":"vg0","vg_uuid":"u","vg_size":"8388608","vg_free":"4194304","vg_extent_size":"4194304"}]}]}', "vgs");
 * if (vg?.freeBytes !== 4194304) throw new Error("unexpected");
 * ```
 */
export function parseVgs(stdout: string, command: string): VgReport[] {
  return rows(stdout, "vg", command).map((row) => ({
    name: text(row, "vg_name", command),
    uuid: text(row, "vg_uuid", command),
    sizeBytes: bytes(row, "vg_size", command),
    freeBytes: bytes(row, "vg_free", command),
    extentBytes: bytes(row, "vg_extent_size", command),
  }));
}

/**
 * Parses `lvs --reportformat json --units b --nosuffix -o LV_FIELDS`.
 *
 * @param stdout What lvs printed.
 * @param command The command line, for messages.
 * @returns The logical volumes.
 * @throws {VirtError} When the output does not have the expected shape.
 * @example
 * ```ts
 * import { parseLvs } from "./reports.ts";
 * const out = '{"report":[{"lv":[{"lv_name":"a","lv_uuid":"u","lv_path":"/dev/vg0/a","lv_size":"4194304",' +
 *   '"lv_attr":"-wi-XX----","pool_lv":"","data_percent":"","segtype":"linear"}]}]}';
 * const [lv] = parseLvs(out, "lvs");
 * if (lv?.path !== "/dev/vg0/a" || lv.dataPercent !== undefined) throw new Error("unexpected");
 * ```
 */
export function parseLvs(stdout: string, command: string): LvReport[] {
  return rows(stdout, "lv", command).map((row) => {
    const percent = text(row, "data_percent", command);
    return {
      name: text(row, "lv_name", command),
      uuid: text(row, "lv_uuid", command),
      path: text(row, "lv_path", command),
      sizeBytes: bytes(row, "lv_size", command),
      attr: text(row, "lv_attr", command),
      poolLv: text(row, "pool_lv", command),
      dataPercent: percent === "" ? undefined : Number(percent),
      segtype: text(row, "segtype", command),
    };
  });
}

/**
 * Parses `pvs --reportformat json -o PV_FIELDS`.
 *
 * @param stdout What pvs printed.
 * @param command The command line, for messages.
 * @returns The physical volumes.
 * @throws {VirtError} When the output does not have the expected shape.
 * @example
 * ```ts
 * import { parsePvs } from "./reports.ts";
 * const [pv] = parsePvs('{"report":[{"pv":[{"pv_name":"/dev/loop0","vg_name":"vg0"}]}]}', "pvs");
 * if (pv?.vgName !== "vg0") throw new Error("unexpected");
 * ```
 */
export function parsePvs(stdout: string, command: string): PvReport[] {
  return rows(stdout, "pv", command).map((row) => ({ name: text(row, "pv_name", command), vgName: text(row, "vg_name", command) }));
}
