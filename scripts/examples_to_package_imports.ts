// `npx tsx scripts/examples_to_package_imports.ts [--write]`: points JSDoc examples at the package's own
// entry points. In each ```ts block of a JSDoc comment, an import from a relative path whose names are
// all exported by an entry point (mod.ts -> "virtkit", test/conformance/mod.ts -> "virtkit/testing") is
// rewritten to import from that entry point, as a user would write it. Imports of internals stay
// relative (test/docs/_imports.ts runs both kinds). Without --write it lists what it would change.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import process from "node:process";
import ts from "typescript";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const ENTRY_POINTS: [string, string][] = [["virtkit", "mod.ts"], ["virtkit/testing", "test/conformance/mod.ts"]];
const SOURCE_DIRS = ["core", "drivers", "plugins", "test/conformance"];

const program = ts.createProgram(ENTRY_POINTS.map(([, file]) => join(ROOT, file)), { allowImportingTsExtensions: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext });
const checker = program.getTypeChecker();
/** Names an entry point exports with `export type { ... }`: importing them as values finds nothing. */
function typeOnlyNames(file: string): Set<string> {
  const text = readFileSync(join(ROOT, file), "utf8");
  const names = [...text.matchAll(/export type \{([^}]*)\}/g)].flatMap((m) => m[1]!.split(",").map((n) => n.trim().split(/\s+as\s+/).at(-1)!));
  return new Set(names.filter(Boolean));
}
const exported = new Map<string, { all: Set<string>; values: Set<string> }>(ENTRY_POINTS.map(([name, file]) => {
  const all = new Set(checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(join(ROOT, file))!)!).map((s) => s.name));
  const types = typeOnlyNames(file);
  return [name, { all, values: new Set([...all].filter((n) => !types.has(n))) }];
}));

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name)) : entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [join(dir, entry.name)] : []
  );
}

/** The entry point that exports every name of an import clause, if one does. */
function entryFor(clause: string, typeImport: boolean): string | undefined {
  const parts = clause.replace(/[{}]/g, "").split(",").map((part) => part.trim()).filter(Boolean);
  if (parts.length === 0) return undefined;
  return ENTRY_POINTS.map(([name]) => name).find((name) => parts.every((part) => {
    const asType = typeImport || part.startsWith("type ");
    const imported = part.replace(/^type\s+/, "").split(/\s+as\s+/)[0]!;
    return (asType ? exported.get(name)!.all : exported.get(name)!.values).has(imported);
  }));
}

const write = process.argv.includes("--write");
let changed = 0;
for (const file of [...SOURCE_DIRS.flatMap(files)]) {
  const text = readFileSync(join(ROOT, file), "utf8");
  const next = text.replace(/(\* import (?:type )?)(\{[^}]*\})( from ")(\.\.?\/[^"]+)(";)/g, (all, lead: string, clause: string, from: string, _spec: string, end: string) => {
    const entry = entryFor(clause, lead.includes("type"));
    return entry ? `${lead}${clause}${from}${entry}${end}` : all;
  });
  if (next === text) continue;
  changed++;
  console.log(`${write ? "rewrote" : "would rewrite"} ${relative(ROOT, join(ROOT, file))}`);
  if (write) writeFileSync(join(ROOT, file), next);
}
console.log(`${changed} files`);
