// `npm run docs:cli`: writes docs/cli.md from the commands' own help, so the reference cannot drift
// (test/cli/docs.test.ts fails when it is stale).
import { writeFileSync } from "node:fs";
import { COMMANDS } from "../cli/commands/mod.ts";
import { renderCliReference } from "../cli/help.ts";

const target = new URL("../docs/cli.md", import.meta.url);
writeFileSync(target, renderCliReference(COMMANDS));
console.log(`wrote ${target.pathname}`);
