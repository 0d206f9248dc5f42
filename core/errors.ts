/**
 * The error hierarchy. Bad arguments are built-in `TypeError` / `RangeError`; everything a caller may
 * want to catch and branch on is a {@linkcode VirtError} with a stable string `code`.
 *
 * @module
 */

/** Stable codes of {@linkcode VirtError}; branch on these, never on messages. */
export type ErrorCode =
  | "not-found"
  | "unsupported"
  | "invalid-state"
  | "conflict"
  | "connect-failed"
  | "command-failed"
  | "job-failed"
  | "qmp-error"
  | "internal";

/** Options shared by every {@linkcode VirtError} constructor. */
export interface VirtErrorOptions {
  /** The driver or backend that raised it (`"test"`, `"qemu"`, `"dir"`, ...). */
  driver?: string;
  /** The underlying error, when this one wraps another. */
  cause?: unknown;
}

/**
 * Base class of every domain failure virtkit reports.
 *
 * @example Branch on the code
 * ```ts
 * import { VirtError, NotFoundError } from "virtkit";
 * const error = new NotFoundError("domain", "web1");
 * if (!(error instanceof VirtError) || error.code !== "not-found") throw new Error("unexpected");
 * ```
 */
export class VirtError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** The driver that raised the error, when known. */
  readonly driver?: string;

  /**
   * @param code Stable code.
   * @param message Human-readable message naming the object.
   * @param options Driver and cause.
   */
  constructor(code: ErrorCode, message: string, options: VirtErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "VirtError";
    this.code = code;
    if (options.driver !== undefined) this.driver = options.driver;
  }
}

/** Kinds of object a {@linkcode NotFoundError} can name. */
export type ObjectType =
  | "domain"
  | "disk"
  | "pool"
  | "volume"
  | "job"
  | "driver"
  | "backend"
  | "plugin"
  | "operation";

/**
 * An object that was asked for does not exist.
 *
 * @example
 * ```ts
 * import { NotFoundError } from "virtkit";
 * const error = new NotFoundError("pool", "images");
 * if (error.message !== 'Cannot find pool "images"') throw new Error(error.message);
 * ```
 */
export class NotFoundError extends VirtError {
  /** What kind of object was looked up. */
  readonly objectType: ObjectType;
  /** The name (or key, path, id) that was looked up. */
  readonly objectName: string;

  /**
   * @param objectType Kind of object.
   * @param objectName Name that was not found.
   * @param options Optional `detail` appended to the message, driver and cause.
   */
  constructor(objectType: ObjectType, objectName: string, options: VirtErrorOptions & { detail?: string } = {}) {
    super(
      "not-found",
      `Cannot find ${objectType} "${objectName}"${options.detail ? `: ${options.detail}` : ""}`,
      options,
    );
    this.name = "NotFoundError";
    this.objectType = objectType;
    this.objectName = objectName;
  }
}

/**
 * The driver or backend cannot do this operation (libvirt's `VIR_ERR_NO_SUPPORT`). Never a silent no-op.
 *
 * @example
 * ```ts
 * import { UnsupportedError } from "virtkit";
 * const error = new UnsupportedError("resizeVolume", { driver: "iscsi" });
 * if (error.operation !== "resizeVolume") throw new Error("unexpected");
 * ```
 */
export class UnsupportedError extends VirtError {
  /** The operation that is not supported. */
  readonly operation: string;

  /**
   * @param operation Name of the operation.
   * @param options Optional `detail`, driver and cause.
   */
  constructor(operation: string, options: VirtErrorOptions & { detail?: string } = {}) {
    const by = options.driver ? ` by driver "${options.driver}"` : "";
    super("unsupported", `Operation "${operation}" is not supported${by}${options.detail ? `: ${options.detail}` : ""}`, options);
    this.name = "UnsupportedError";
    this.operation = operation;
  }
}

/**
 * An operation is not allowed in the object's current state.
 *
 * @example
 * ```ts
 * import { StateError } from "virtkit";
 * const error = new StateError('Cannot start domain "web1": it is already running', { state: "running" });
 * if (error.state !== "running") throw new Error("unexpected");
 * ```
 */
export class StateError extends VirtError {
  /** The state the object was in. */
  readonly state: string;

  /**
   * @param message Message naming the object and the state.
   * @param options The current `state`, driver and cause.
   */
  constructor(message: string, options: VirtErrorOptions & { state: string }) {
    super("invalid-state", message, options);
    this.name = "StateError";
    this.state = options.state;
  }
}

/**
 * Two operations would collide: a name that exists, or a second job writing a volume that a running job writes.
 *
 * @example
 * ```ts
 * import { ConflictError } from "virtkit";
 * const error = new ConflictError('Volume "disk1" is busy: job "job-3" writes it', { jobId: "job-3" });
 * if (error.jobId !== "job-3") throw new Error("unexpected");
 * ```
 */
export class ConflictError extends VirtError {
  /** The id of the job that holds the resource, when a job does. */
  readonly jobId?: string;

  /**
   * @param message Message naming both parties.
   * @param options The conflicting `jobId`, driver and cause.
   */
  constructor(message: string, options: VirtErrorOptions & { jobId?: string } = {}) {
    super("conflict", message, options);
    this.name = "ConflictError";
    if (options.jobId !== undefined) this.jobId = options.jobId;
  }
}

/**
 * A connection could not be opened or was lost.
 *
 * @example
 * ```ts
 * import { ConnectError } from "virtkit";
 * const error = new ConnectError('Cannot connect to "qemu:///session"', { cause: new Error("ENOENT") });
 * if (!(error.cause instanceof Error)) throw new Error("unexpected");
 * ```
 */
export class ConnectError extends VirtError {
  /**
   * @param message What could not be reached.
   * @param options Driver and cause.
   */
  constructor(message: string, options: VirtErrorOptions = {}) {
    super("connect-failed", message, options);
    this.name = "ConnectError";
  }
}

/**
 * An external command (LVM, iSCSI and QEMU tools) exited with a failure.
 *
 * @example
 * ```ts
 * import { CommandError } from "virtkit";
 * const error = new CommandError({ argv: ["lvs", "vg0"], exitCode: 5, stderr: "Volume group not found" });
 * if (error.exitCode !== 5) throw new Error("unexpected");
 * ```
 */
export class CommandError extends VirtError {
  /** The command and its arguments. */
  readonly argv: readonly string[];
  /** Its exit code (`null` when killed by a signal). */
  readonly exitCode: number | null;
  /** What it wrote to standard error. */
  readonly stderr: string;

  /**
   * @param details The argv, exit code and stderr, plus driver and cause.
   */
  constructor(details: VirtErrorOptions & { argv: readonly string[]; exitCode: number | null; stderr: string }) {
    const firstLine = details.stderr.trim().split("\n")[0] ?? "";
    super(
      "command-failed",
      `Command "${details.argv.join(" ")}" failed with exit code ${details.exitCode}${firstLine ? `: ${firstLine}` : ""}`,
      details,
    );
    this.name = "CommandError";
    this.argv = [...details.argv];
    this.exitCode = details.exitCode;
    this.stderr = details.stderr;
  }
}

/**
 * A job ended `failed` or `aborted`; thrown by `job.wait()`. `info` is the job's final snapshot.
 *
 * @example
 * ```ts
 * import { JobError } from "virtkit";
 * const error = new JobError('Job "job-1" failed: disk full', { info: { id: "job-1", state: "failed" } });
 * if (error.info.state !== "failed") throw new Error("unexpected");
 * ```
 */
export class JobError extends VirtError {
  /** The final job snapshot (a `JobInfo`). */
  readonly info: {
    /** Job id. */
    readonly id: string;
    /** Final state (`failed` or `aborted`). */
    readonly state: string;
    /** The error text, when it failed. */
    readonly error?: string;
  };

  /**
   * @param message What happened to which job.
   * @param options The final `info`, driver and cause.
   */
  constructor(message: string, options: VirtErrorOptions & { info: JobError["info"] }) {
    super("job-failed", message, options);
    this.name = "JobError";
    this.info = options.info;
  }
}

/**
 * A QMP failure. QEMU's own error replies keep QMP's class in `errorClass` (`GenericError`,
 * `DeviceNotActive`, ...); the QMP client's subclasses (a lost connection, a broken protocol) carry a
 * class of virtkit's, so `error instanceof QmpError` catches everything that went wrong over QMP.
 *
 * @example
 * ```ts
 * import { QmpError } from "virtkit";
 * const error = new QmpError({ errorClass: "DeviceNotActive", desc: "Block job 'x' not found", command: "block-job-set-speed" });
 * if (error.errorClass !== "DeviceNotActive") throw new Error("unexpected");
 * ```
 */
export class QmpError extends VirtError {
  /** QMP's error class. */
  readonly errorClass: string;
  /** QMP's description. */
  readonly desc: string;
  /** The command that failed, when known. */
  readonly command?: string;

  /**
   * @param details QMP's class and description, the command, driver and cause.
   */
  constructor(details: VirtErrorOptions & { errorClass: string; desc: string; command?: string; code?: ErrorCode }) {
    super(details.code ?? "qmp-error", details.command ? `QMP command "${details.command}" failed: ${details.desc}` : details.desc, {
      driver: details.driver ?? "qemu",
      cause: details.cause,
    });
    this.name = "QmpError";
    this.errorClass = details.errorClass;
    this.desc = details.desc;
    if (details.command !== undefined) this.command = details.command;
  }
}
