/**
 * Where a `virtkit` command writes: text for people (virsh-style tables), or JSON with `--json`.
 *
 * @module
 */

/** A text sink (process.stdout / process.stderr, or a buffer in tests). */
export interface TextSink {
  /** Writes text as it is. */
  write(text: string): unknown;
  /** True when it is a terminal. */
  readonly isTTY?: boolean;
  /** Terminal width. */
  readonly columns?: number;
}

/** One column of a table: the field it shows and its header. */
export interface Column<Row> {
  /** Header text (virsh's, e.g. `"Name"`). */
  readonly header: string;
  /** The cell text. */
  readonly cell: (row: Row) => string;
}

/** A command's output. */
export interface Output {
  /** `--json` was given. */
  readonly json: boolean;
  /** Standard output. */
  readonly stdout: TextSink;
  /** Standard error (progress and warnings). */
  readonly stderr: TextSink;
  /** One line of text on stdout (ignored with `--json`). */
  line(text: string): void;
  /** A warning on stderr (also with `--json`). */
  warn(text: string): void;
  /** With `--json`: the value as one JSON document; else the text lines it renders to. */
  result(value: unknown, text: () => readonly string[]): void;
  /** With `--json`: the rows as a JSON array; else a table with a header line and a rule, as virsh prints. */
  table<Row>(rows: readonly Row[], columns: readonly Column<Row>[]): void;
}

/**
 * Makes the output of one command.
 *
 * @param stdout Standard output.
 * @param stderr Standard error.
 * @param json Whether `--json` was given.
 * @returns The output.
 * @example
 * ```ts
 * import { createOutput } from "./output.ts";
 * let text = "";
 * const sink = { write: (s: string) => { text += s; } };
 * createOutput(sink, sink, false).table([{ name: "test", state: "running" }], [
 *   { header: "Name", cell: (r) => r.name }, { header: "State", cell: (r) => r.state },
 * ]);
 * if (!/^ Name +State\n-+\n test +running\n$/.test(text)) throw new Error(text);
 * ```
 */
export function createOutput(stdout: TextSink, stderr: TextSink, json: boolean): Output {
  const out: Output = {
    json,
    stdout,
    stderr,
    line(text) {
      if (!json) stdout.write(`${text}\n`);
    },
    warn(text) {
      stderr.write(`warning: ${text}\n`);
    },
    result(value, text) {
      if (json) stdout.write(`${JSON.stringify(value, null, 2)}\n`);
      else for (const line of text()) stdout.write(`${line}\n`);
    },
    table(rows, columns) {
      if (json) {
        out.result(rows, () => []);
        return;
      }
      const cells = rows.map((row) => columns.map((column) => column.cell(row)));
      const widths = columns.map((column, i) => Math.max(column.header.length, ...cells.map((r) => r[i]!.length)));
      const render = (values: readonly string[]) => ` ${values.map((v, i) => v.padEnd(widths[i]!)).join("   ")}`.trimEnd();
      stdout.write(`${render(columns.map((c) => c.header))}\n`);
      const totalWidth = 2 + widths.reduce((sum, width) => sum + width, 0) + 3 * (widths.length - 1);
      stdout.write(`${"-".repeat(totalWidth)}\n`);
      for (const row of cells) stdout.write(`${render(row)}\n`);
    },
  };
  return out;
}
