/**
 * Domain commands, with virsh's names and argument order: `list`, `dominfo`, `domstate`, `domblklist`,
 * `dumpconfig`, `define`, `undefine`, `start`, `shutdown`, `destroy`, `suspend`, `resume`.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import type { DomainConfig } from "../../core/domain.ts";
import { formatBytes } from "../../core/units.ts";
import type { CommandSpec } from "../spec.ts";
import { UsageError } from "../usage.ts";

const DOMAIN = { name: "DOMAIN", description: "domain name" } as const;

/** A lifecycle verb: `virtkit start DOMAIN` and friends. */
function lifecycle(name: string, verb: "start" | "shutdown" | "destroy" | "suspend" | "resume" | "undefine", summary: string, done: string): CommandSpec {
  return {
    name,
    group: "Domains",
    summary,
    args: [DOMAIN],
    examples: [`${name} web1`],
    async run({ connect, args, out }) {
      const dom = await (await connect()).domains.get(args.DOMAIN!);
      await dom[verb]();
      out.result({ domain: dom.name, [verb]: true }, () => [`Domain '${dom.name}' ${done}`]);
    },
  };
}

/** The domain commands. */
export const DOMAIN_COMMANDS: readonly CommandSpec[] = [
  {
    name: "list",
    group: "Domains",
    summary: "list running domains (all with --all)",
    args: [],
    options: { all: { type: "boolean", description: "include shut-off domains" } },
    examples: ["list --all", "-c qemu:///session list --all --json"],
    async run({ connect, options, out }) {
      const conn = await connect();
      const infos = await Promise.all((await conn.domains.list()).map((dom) => dom.info()));
      const shown = options.all ? infos : infos.filter((info) => info.state !== "shutoff");
      out.table(shown, [
        { header: "Name", cell: (i) => i.name },
        { header: "State", cell: (i) => (i.state === "shutoff" ? "shut off" : i.state) },
        { header: "vCPUs", cell: (i) => String(i.vcpus) },
        { header: "Memory", cell: (i) => formatBytes(i.memoryBytes) },
      ]);
    },
  },
  {
    name: "dominfo",
    group: "Domains",
    summary: "show a domain's state, UUID, vCPUs and memory",
    args: [DOMAIN],
    examples: ["dominfo test"],
    async run({ connect, args, out }) {
      const dom = await (await connect()).domains.get(args.DOMAIN!);
      const info = await dom.info();
      out.result(info, () => [
        `Name:           ${info.name}`,
        `UUID:           ${info.uuid}`,
        `State:          ${info.state === "shutoff" ? "shut off" : info.state}`,
        `CPU(s):         ${info.vcpus}`,
        `Memory:         ${formatBytes(info.memoryBytes)}`,
      ]);
    },
  },
  {
    name: "domstate",
    group: "Domains",
    summary: "show a domain's state",
    args: [DOMAIN],
    examples: ["domstate test"],
    async run({ connect, args, out }) {
      const { state } = await (await (await connect()).domains.get(args.DOMAIN!)).info();
      out.result({ state }, () => [state === "shutoff" ? "shut off" : state]);
    },
  },
  {
    name: "domblklist",
    group: "Domains",
    summary: "list a domain's disks with their backing chains",
    args: [DOMAIN],
    examples: ["domblklist test"],
    async run({ connect, args, out }) {
      const disks = await (await (await connect()).domains.get(args.DOMAIN!)).disks();
      out.table(disks, [
        { header: "Target", cell: (d) => d.target },
        { header: "Source", cell: (d) => d.path },
        { header: "Format", cell: (d) => d.format },
        { header: "Backing chain", cell: (d) => d.backingChain.map((layer) => `${layer.path} (${layer.format})`).join(" <- ") || "-" },
      ]);
    },
  },
  {
    name: "dumpconfig",
    group: "Domains",
    summary: "print a domain's configuration (DomainConfig) as JSON",
    args: [DOMAIN],
    examples: ["dumpconfig test > test.json"],
    async run({ connect, args, out }) {
      const config = await (await (await connect()).domains.get(args.DOMAIN!)).config();
      out.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
    },
  },
  {
    name: "define",
    group: "Domains",
    summary: "define a domain from a DomainConfig JSON file",
    args: [{ name: "FILE", description: "a JSON file holding a DomainConfig (as dumpconfig prints)" }],
    examples: ["define web1.json"],
    async run({ connect, args, out }) {
      const text = await readFile(args.FILE!, "utf8");
      let config: DomainConfig;
      try {
        config = JSON.parse(text) as DomainConfig;
      } catch (error) {
        throw new UsageError(`define: ${args.FILE} is not JSON: ${error instanceof Error ? error.message : String(error)}`);
      }
      const dom = await (await connect()).domains.define(config);
      out.result({ domain: dom.name, uuid: dom.uuid }, () => [`Domain '${dom.name}' defined from ${args.FILE}`]);
    },
  },
  lifecycle("undefine", "undefine", "remove a shut-off domain's definition", "has been undefined"),
  lifecycle("start", "start", "start a shut-off domain", "started"),
  lifecycle("shutdown", "shutdown", "ask a domain's guest to power off (ACPI)", "is being shutdown"),
  lifecycle("destroy", "destroy", "power a domain off at once, like pulling the plug", "destroyed"),
  lifecycle("suspend", "suspend", "pause a domain's vCPUs", "suspended"),
  lifecycle("resume", "resume", "resume a paused domain", "resumed"),
];
