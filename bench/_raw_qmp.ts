/**
 * A minimal QMP client on a plain socket: the reference the qemu benches measure virtkit's QMP stack
 * and block jobs against (QEMU driven by hand, nothing of virtkit's on the path).
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createConnection, type Socket } from "node:net";
import { QEMU_BINARY } from "../drivers/qemu/command_line.ts";

/** A minimal QMP client on a plain socket: the reference virtkit's QMP stack is measured against. */
export class RawQmp {
  readonly #socket: Socket;
  readonly #replies: Array<(line: Record<string, unknown>) => void> = [];
  readonly #events: Array<(line: Record<string, unknown>) => void> = [];
  #buffer = "";

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.#buffer += chunk;
      let nl: number;
      while ((nl = this.#buffer.indexOf("\n")) >= 0) {
        const msg = JSON.parse(this.#buffer.slice(0, nl)) as Record<string, unknown>;
        this.#buffer = this.#buffer.slice(nl + 1);
        if ("event" in msg) for (const listener of this.#events) listener(msg);
        else if ("return" in msg || "error" in msg) this.#replies.shift()?.(msg);
      }
    });
  }

  static async connect(path: string): Promise<RawQmp> {
    for (;;) {
      const socket = await new Promise<Socket | undefined>((resolve) => {
        const s = createConnection({ path });
        s.once("connect", () => resolve(s));
        s.once("error", () => resolve(undefined));
      });
      if (socket) {
        const qmp = new RawQmp(socket);
        await new Promise<void>((resolve) => socket.once("data", () => resolve()));
        await qmp.send("qmp_capabilities");
        return qmp;
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  send(execute: string, args?: object): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      this.#replies.push(resolve);
      this.#socket.write(JSON.stringify(args ? { execute, arguments: args } : { execute }) + "\n");
    });
  }

  /** The next event of that name (whose `data` passes `match`, when given). */
  next(event: string, match?: (data: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      const listener = (msg: Record<string, unknown>) => {
        if (msg.event !== event || (match && !match((msg.data ?? {}) as Record<string, unknown>))) return;
        this.#events.splice(this.#events.indexOf(listener), 1);
        resolve(msg);
      };
      this.#events.push(listener);
    });
  }

  close(): void {
    this.#socket.destroy();
  }
}


/** Spawns QEMU with a command line and connects a raw QMP client to its socket. */
export async function spawnByHand(args: string[], socket: string): Promise<{ child: ChildProcess; qmp: RawQmp }> {
  const child = spawn(QEMU_BINARY, args, { stdio: "ignore" });
  const qmp = await RawQmp.connect(socket);
  return { child, qmp };
}

/** `quit`, then waits for the process to exit. */
export async function stopByHand(child: ChildProcess, qmp: RawQmp): Promise<void> {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  await qmp.send("quit");
  qmp.close();
  await exited;
}
