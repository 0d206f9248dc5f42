/**
 * The one place valibot's issues become virtkit's errors: every config check (define(), fixtures,
 * plugins' pool configs, XML, the CLI) goes through {@linkcode parseConfig}, so every message has the
 * same shape: `Invalid domain config "web1": disks[1].target: it contains a path separator`.
 *
 * Numbers out of range are a `RangeError`; everything else (wrong type, unknown field, broken rule) a
 * `TypeError`.
 *
 * @module
 */
import * as v from "valibot";

/**
 * The path of an issue as a JavaScript accessor: `disks[1].target`, `pools[0].volumes[2].format`.
 *
 * @param issue A valibot issue.
 * @returns The path, or `""` for the value itself.
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { issuePath } from "./parse_config.ts";
 * const result = v.safeParse(v.object({ disks: v.array(v.object({ target: v.string() })) }), { disks: [{ target: "a" }, { target: 1 }] });
 * if (result.success || issuePath(result.issues[0]) !== "disks[1].target") throw new Error("unexpected");
 * ```
 */
export function issuePath(issue: v.BaseIssue<unknown>): string {
  let path = "";
  for (const item of issue.path ?? []) {
    const key = item.key;
    path += typeof key === "number" ? `[${key}]` : path === "" ? String(key) : `.${String(key)}`;
  }
  return path;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return typeof value;
}

/** The rule an issue broke, in words. */
function rule(issue: v.BaseIssue<unknown>): string {
  const path = issue.path ?? [];
  const last = path[path.length - 1];
  // An unknown key of a strict object: valibot reports it at the key's path, expecting `never`.
  if (issue.type === "strict_object" && issue.expected === "never" && last !== undefined) {
    return `unknown field "${String(last.key)}" (a typo? unknown fields are refused, not ignored)`;
  }
  if (issue.kind === "schema") {
    const expected = (issue.expected ?? "").replace(/^\((.*)\)$/, "$1").replaceAll(" | ", " or ");
    if (issue.input === undefined) return issue.type === "strict_object" ? "is required" : `is required (expected ${expected})`;
    if (issue.type === "picklist" || issue.type === "literal" || issue.type === "variant") {
      return `is ${describe(issue.input)}, expected ${expected}`;
    }
    return `expected ${expected}, got ${describe(issue.input)}`;
  }
  // Validation actions carry virtkit's own wording ("it contains a path separator").
  return typeof issue.input === "object" && issue.input !== null ? issue.message : `${describe(issue.input)}: ${issue.message}`;
}

/**
 * The error for a failed parse: all issues (up to five) in one message, the first deciding the class.
 *
 * @param issues What valibot reported.
 * @param what What was checked (`domain config "web1"`).
 * @returns A `RangeError` when the first issue is a number out of range, else a `TypeError`.
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { configError } from "./parse_config.ts";
 * const result = v.safeParse(v.strictObject({ vcpus: v.number() }), { vcpus: 1, vCPUs: 2 });
 * if (result.success) throw new Error("unexpected");
 * const error = configError(result.issues, "domain config");
 * if (!(error instanceof TypeError) || !error.message.includes('unknown field "vCPUs"')) throw error;
 * ```
 */
export function configError(issues: readonly v.BaseIssue<unknown>[], what: string): TypeError | RangeError {
  const shown = issues.slice(0, 5).map((issue) => {
    const path = issuePath(issue);
    return path === "" ? rule(issue) : `${path}: ${rule(issue)}`;
  });
  const more = issues.length > 5 ? ` (and ${issues.length - 5} more)` : "";
  const message = `Invalid ${what}: ${shown.join("; ")}${more}`;
  const first = issues[0]!;
  // A number that breaks a rule (or is NaN, which valibot's number() refuses) is out of range.
  const outOfRange = typeof first.input === "number" && (first.kind === "validation" || (first.type === "number" && Number.isNaN(first.input)));
  return outOfRange ? new RangeError(message) : new TypeError(message);
}

/**
 * Checks a value against a schema and returns its output (defaults applied), or throws.
 *
 * @param schema The schema.
 * @param value The input.
 * @param what What it is, for the message; a function gets the input to name it (`pool "a"`).
 * @returns The parsed output.
 * @throws {TypeError} For a wrong type, an unknown field or a broken rule (the message names the path).
 * @throws {RangeError} For a number out of range.
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { parseConfig } from "./parse_config.ts";
 * const schema = v.strictObject({ vcpus: v.pipe(v.number(), v.minValue(1, "needs at least one vCPU")) });
 * let error: unknown;
 * try { parseConfig(schema, { vcpus: 0 }, "domain config"); } catch (e) { error = e; }
 * if (!(error instanceof RangeError) || error.message !== "Invalid domain config: vcpus: 0: needs at least one vCPU") throw error;
 * ```
 */
export function parseConfig<S extends v.GenericSchema>(schema: S, value: unknown, what: string | ((value: unknown) => string)): v.InferOutput<S> {
  const result = v.safeParse(schema, value);
  if (result.success) return result.output;
  throw configError(result.issues, typeof what === "string" ? what : what(value));
}

/**
 * Names a config by its `name` field when it has a usable one: `domain config "web1"`, else `domain config`.
 *
 * @param kind The kind (`"domain config"`).
 * @returns A namer for {@linkcode parseConfig}.
 * @example
 * ```ts
 * import { namedBy } from "./parse_config.ts";
 * if (namedBy("pool config")({ name: "images" }) !== 'pool config "images"') throw new Error("unexpected");
 * ```
 */
export function namedBy(kind: string): (value: unknown) => string {
  return (value) => {
    const name = typeof value === "object" && value !== null ? (value as { name?: unknown }).name : undefined;
    return typeof name === "string" && name.length > 0 && name.length <= 64 ? `${kind} ${JSON.stringify(name)}` : kind;
  };
}
