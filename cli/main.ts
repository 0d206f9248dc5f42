#!/usr/bin/env node
/**
 * The `virtkit` command: `virtkit [--connect URI] COMMAND ...` (virsh-like). `virtkit help` lists the
 * commands; `virtkit demo` runs user story 1 on the built-in test driver.
 *
 * @module
 */
import process from "node:process";
import { connect } from "../mod.ts";
import { parseBytes } from "../core/units.ts";
import { parseArgs } from "./args.ts";
import { COMMANDS } from "./commands.ts";
import { runDemo } from "./demo.ts";

const print = (line: string) => console.log(line);

async function main(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv);
  const name = args.positional[0] ?? "help";
  if (name === "help" || args.options.has("help")) {
    print("usage: virtkit [--connect URI] COMMAND [ARGS]   (default URI: test:///default)");
    print("  demo [--bandwidth 64M]        provision a VM from a template and pull its disk (user story 1)");
    for (const command of Object.values(COMMANDS)) print(`  ${command.usage}`);
    return 0;
  }
  await using conn = await connect(args.options.get("connect") ?? "test:///default");
  if (name === "demo") {
    const bandwidthText = args.options.get("bandwidth");
    const state = await runDemo(conn, print, {
      bandwidth: bandwidthText === undefined ? undefined : parseBytes(bandwidthText),
    });
    return state === "completed" ? 0 : 1;
  }
  const command = COMMANDS[name];
  if (!command) throw new TypeError(`Unknown command "${name}"; try "virtkit help"`);
  await command.run(conn, args, print);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
