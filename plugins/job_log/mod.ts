/**
 * The `job-log` plugin: one JSON line per job transition on every connection opened through the
 * registry it is used in — an audit trail of who pulled, cloned or wiped what, how it ended and why.
 * It acts only through the plugin host (per-connection listener) and the event bus.
 *
 * @example
 * ```ts
 * import { createDefaultRegistry, createVirtualClock } from "virtkit";
 * import { jobLogPlugin } from "./mod.ts";
 * const lines: string[] = [];
 * const registry = createDefaultRegistry();
 * const remove = await registry.use(jobLogPlugin({ write: (line) => lines.push(line) }));
 * const clock = createVirtualClock();
 * const conn = await registry.connect("test:///default", { clock });
 * const job = await (await conn.domains.get("test")).blockPull("vda");
 * await clock.runUntilIdle();
 * await job.wait();
 * await conn.close();
 * await remove();
 * if (!lines.some((line) => JSON.parse(line).event === "job:completed")) throw new Error(lines.join("\n"));
 * ```
 *
 * @module
 */
import { definePlugin, type PluginDefinition } from "../../core/plugin.ts";
import { API_VERSION } from "../../core/plugin.ts";

/** Options of {@linkcode jobLogPlugin}. */
export interface JobLogOptions {
  /** Receives each line (default: `console.log`). */
  write?: (line: string) => void;
  /** Also log `job:progress` events (default false: they are frequent). */
  progress?: boolean;
}

/** The job events the log records. */
const LOGGED = new Set(["job:created", "job:state", "job:completed", "job:failed", "job:aborted", "job:dismissed"]);

/**
 * Creates the plugin; `registry.use(jobLogPlugin())` turns it on.
 *
 * @param options Where lines go, and whether progress is logged.
 * @returns A plugin definition.
 * @example
 * ```ts
 * import { jobLogPlugin } from "./mod.ts";
 * const plugin = jobLogPlugin({ write: () => {} });
 * if (plugin.name !== "job-log") throw new Error(plugin.name);
 * ```
 */
export function jobLogPlugin(options: JobLogOptions = {}): PluginDefinition {
  const write = options.write ?? ((line: string) => console.log(line));
  if (typeof write !== "function") throw new TypeError("Invalid job-log option write: expected a function");
  return definePlugin({
    name: "job-log",
    apiVersion: API_VERSION,
    setup(host) {
      host.onConnect((conn) =>
        conn.events.on("job:*", (event) => {
          if (!LOGGED.has(event.type) && !(options.progress && event.type === "job:progress")) return;
          const { job } = event;
          write(JSON.stringify({
            seq: event.seq,
            time: event.time,
            uri: conn.uri,
            event: event.type,
            id: job.id,
            type: job.type,
            state: job.state,
            target: job.target,
            cur: job.cur,
            end: job.end,
            ...(job.error === undefined ? {} : { error: job.error }),
          }));
        })
      );
    },
  });
}
