/**
 * The LVM2 commands a `logical` pool runs, as argument arrays through a {@linkcode CommandRunner}.
 * Every command that could touch device-mapper gets `--driverloaded n` (and `lvcreate` also `-an -Zn`)
 * on a host where device-mapper does not work, so LVM2 changes metadata only instead of failing
 * (machine-facts §5.2); whether it works is asked once, with `dmsetup version`.
 *
 * @module
 */
import type { CommandRunner } from "../command_runner.ts";
import { CommandError } from "../../core/errors.ts";
import { LV_FIELDS, type LvReport, parseLvs, parsePvs, parseVgs, PV_FIELDS, type PvReport, VG_FIELDS, type VgReport } from "./reports.ts";

type Call = { signal?: AbortSignal } | undefined;

const ACTIVATION_DISABLED = /^\s*WARNING: (Activation disabled|Skipping zeroing)/m;

/**
 * The LVM2 tools bound to one volume group.
 *
 * @example The argv of a linear create on a host without device-mapper
 * ```ts
 * import { CommandError } from "virtkit";
 * import { LvmTools } from "./lvm_tools.ts";
 * const calls: string[][] = [];
 * const runner = {
 *   run: async (argv: readonly string[]) => {
 *     calls.push([...argv]);
 *     if (argv[0] === "dmsetup") throw new CommandError({ argv, exitCode: 1, stderr: "no device-mapper" });
 *     return "";
 *   },
 * };
 * await new LvmTools(runner, "vg0").lvcreate("disk", 4194304, undefined);
 * if (calls[1]!.join(" ") !== "lvcreate --driverloaded n -an -Zn -y -n disk -L 4194304b vg0") throw new Error(calls.join(";"));
 * ```
 */
export class LvmTools {
  readonly #runner: CommandRunner;
  /** The volume group. */
  readonly vg: string;
  #deviceMapper: Promise<boolean> | undefined;

  /**
   * @param runner Runs the tools.
   * @param vg The volume group every command names.
   */
  constructor(runner: CommandRunner, vg: string) {
    // LVM2 answers `--driverloaded n` with "WARNING: Activation disabled..." first on stderr; that is our own
    // flag echoed, so it is dropped from the error, whose message would otherwise quote only it.
    this.#runner = {
      run: (argv, call) =>
        runner.run(argv, call).catch((error: unknown) => {
          if (!(error instanceof CommandError) || !ACTIVATION_DISABLED.test(error.stderr)) throw error;
          const stderr = error.stderr.split("\n").filter((line) => !ACTIVATION_DISABLED.test(line)).join("\n");
          throw new CommandError({ argv: error.argv, exitCode: error.exitCode, stderr, driver: "logical", cause: error });
        }),
    };
    this.vg = vg;
  }

  /** Whether the kernel's device-mapper works (`dmsetup version` succeeds), asked once. */
  deviceMapper(call?: Call): Promise<boolean> {
    this.#deviceMapper ??= this.#runner.run(["dmsetup", "version"], call).then(
      () => true,
      (error: unknown) => {
        if (error instanceof CommandError) return false;
        this.#deviceMapper = undefined;
        throw error;
      },
    );
    return this.#deviceMapper;
  }

  /** The options that keep a command away from device-mapper when it does not work. */
  async #noDm(call: Call): Promise<string[]> {
    return (await this.deviceMapper(call)) ? [] : ["--driverloaded", "n"];
  }

  /** The volume group's report; `CommandError` from vgs when it does not exist. */
  async vgs(call?: Call): Promise<VgReport> {
    const argv = ["vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", VG_FIELDS, this.vg];
    const [vg] = parseVgs(await this.#runner.run(argv, call), argv.join(" "));
    if (!vg) throw new CommandError({ argv, exitCode: 0, stderr: `Volume group "${this.vg}" not reported`, driver: "logical" });
    return vg;
  }

  /** The group's logical volumes. */
  async lvs(call?: Call): Promise<LvReport[]> {
    const argv = ["lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", LV_FIELDS, this.vg];
    return parseLvs(await this.#runner.run(argv, call), argv.join(" "));
  }

  /** Every physical volume of the host. */
  async pvs(call?: Call): Promise<PvReport[]> {
    const argv = ["pvs", "--reportformat", "json", "-o", PV_FIELDS];
    return parsePvs(await this.#runner.run(argv, call), argv.join(" "));
  }

  /** `pvcreate DEVICE`. */
  async pvcreate(device: string, call?: Call): Promise<void> {
    await this.#runner.run(["pvcreate", device], call);
  }

  /** `pvremove -y DEVICE`. */
  async pvremove(device: string, call?: Call): Promise<void> {
    await this.#runner.run(["pvremove", "-y", device], call);
  }

  /** `vgcreate VG DEVICE...`. */
  async vgcreate(devices: readonly string[], call?: Call): Promise<void> {
    await this.#runner.run(["vgcreate", this.vg, ...devices], call);
  }

  /** `vgremove -f VG` (removes its LVs too, as libvirt's pool-delete does). */
  async vgremove(call?: Call): Promise<void> {
    await this.#runner.run(["vgremove", ...(await this.#noDm(call)), "-f", this.vg], call);
  }

  /** `vgchange -aay VG` / `-an`: activation, only where device-mapper works (else nothing to do). */
  async vgchange(active: boolean, call?: Call): Promise<void> {
    if (!(await this.deviceMapper(call))) return;
    await this.#runner.run(["vgchange", active ? "-aay" : "-an", this.vg], call);
  }

  /** `lvcreate`: linear of `sizeBytes`, or thin of that virtual size in `thinPool`. */
  async lvcreate(name: string, sizeBytes: number, thinPool: string | undefined, call?: Call): Promise<void> {
    const noDm = await this.#noDm(call);
    const offline = noDm.length > 0 ? [...noDm, "-an", "-Zn"] : [];
    const size = thinPool === undefined ? ["-L", `${sizeBytes}b`] : ["--thin", "-V", `${sizeBytes}b`];
    const where = thinPool === undefined ? this.vg : `${this.vg}/${thinPool}`;
    await this.#runner.run(["lvcreate", ...offline, "-y", "-n", name, ...size, where], call);
  }

  /** `lvremove -f VG/LV`. */
  async lvremove(name: string, call?: Call): Promise<void> {
    await this.#runner.run(["lvremove", ...(await this.#noDm(call)), "-f", `${this.vg}/${name}`], call);
  }

  /** `lvresize -f -L SIZEb VG/LV` (grow or shrink; the caller has checked shrinking was asked for). */
  async lvresize(name: string, sizeBytes: number, call?: Call): Promise<void> {
    await this.#runner.run(["lvresize", ...(await this.#noDm(call)), "-f", "-L", `${sizeBytes}b`, `${this.vg}/${name}`], call);
  }
}
