import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConnectError } from "../../../../core/errors.ts";
import { QmpClient } from "../../../../drivers/qemu/qmp/client.ts";
import { QmpDisconnectedError } from "../../../../drivers/qemu/qmp/errors.ts";
import { connectUnixSocket } from "../../../../drivers/qemu/qmp/transport.ts";
import { QEMU_7_2_GREETING } from "../../../../drivers/qemu/qmp/testing/mod.ts";

/** A tiny QMP server on a real unix socket: greeting, then `handle` answers each command line. */
function serve(path: string, handle: (command: { execute: string; id?: unknown }, socket: Socket) => void): Promise<Server> {
  const server = createServer((socket) => {
    socket.write(JSON.stringify(QEMU_7_2_GREETING) + "\r\n");
    let buffered = "";
    socket.setEncoding("utf8");
    socket.on("error", () => {});
    socket.on("data", (text: string) => {
      buffered += text;
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        handle(JSON.parse(line), socket);
      }
    });
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}

let dir: string;
let server: Server | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "vk-qmp-sock-"));
});
afterEach(async () => {
  if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe("connectUnixSocket()", () => {
  it("carries QMP both ways, a 300 KiB reply included", async () => {
    const big = "y".repeat(300 * 1024);
    server = await serve(join(dir, "qmp.sock"), (command, socket) => {
      const value = command.execute === "big" ? big : {};
      socket.write(JSON.stringify({ return: value, id: command.id }) + "\r\n");
    });
    const qmp = await QmpClient.connect(await connectUnixSocket(join(dir, "qmp.sock")));
    expect(qmp.greeting.QMP.version.qemu.major).toBe(7);
    expect(await qmp.execute("big")).toBe(big);
    expect(await qmp.execute("query-status")).toEqual({});
    await qmp.close();
    await qmp.closed;
  });

  it("reports the server hanging up as QmpDisconnectedError for pending commands", async () => {
    server = await serve(join(dir, "qmp.sock"), (command, socket) => {
      if (command.execute === "qmp_capabilities") socket.write(JSON.stringify({ return: {}, id: command.id }) + "\r\n");
      else socket.destroy();
    });
    const qmp = await QmpClient.connect(await connectUnixSocket(join(dir, "qmp.sock")));
    const error = await qmp.execute("query-jobs").catch((e) => e);
    expect(error).toBeInstanceOf(QmpDisconnectedError);
    expect(error.command).toBe("query-jobs");
    await expect(qmp.closed).rejects.toBeInstanceOf(QmpDisconnectedError);
  });

  it("fails with ConnectError, keeping the system error as cause, when nothing listens", async () => {
    const error = await connectUnixSocket(join(dir, "missing.sock")).catch((e) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect(error.message).toContain("missing.sock");
    expect((error.cause as { code?: string }).code).toBe("ENOENT");
  });

  it("rejects with the signal's own reason", async () => {
    const reason = new Error("abort");
    await expect(connectUnixSocket(join(dir, "x.sock"), { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  it("rejects bad arguments with TypeError / RangeError", () => {
    expect(() => connectUnixSocket("")).toThrow(TypeError);
    expect(() => connectUnixSocket(join(dir, "x.sock"), { timeoutMs: 0 })).toThrow(RangeError);
  });
});
