/**
 * A TCP relay between the initiator and a target, which a test can stall (it stops passing the
 * target's bytes on) or cut (it closes both sides), to make timeouts and dropped connections happen
 * for real. Also a "silent portal" that accepts and never answers.
 */
import net from "node:net";

/** A relay on 127.0.0.1 to `127.0.0.1:targetPort`. */
export class Relay {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #stalled = false;
  /** For connections opened from now on: how many of the target's bytes pass before they stall. */
  #passBytes: number | undefined;
  /** Connections that stalled after their first bytes. */
  stalledConnections = 0;
  port = 0;
  /** Sees every chunk the target sends (a test decodes them to watch the target's PDUs). */
  onTargetBytes: ((chunk: Uint8Array) => void) | undefined;

  private constructor(server: net.Server) {
    this.#server = server;
  }

  /** Starts a relay to a target port. */
  static async start(targetPort: number): Promise<Relay> {
    let relay!: Relay;
    const server = net.createServer((client) => {
      const upstream = net.connect({ host: "127.0.0.1", port: targetPort });
      relay.#sockets.add(client).add(upstream);
      let budget = relay.#passBytes ?? Number.POSITIVE_INFINITY;
      client.on("data", (chunk) => upstream.write(chunk));
      upstream.on("data", (chunk: Buffer) => {
        relay.onTargetBytes?.(chunk);
        if (relay.#stalled || budget <= 0) return;
        if (chunk.byteLength >= budget) {
          client.write(chunk.subarray(0, budget));
          budget = 0;
          relay.stalledConnections++;
          return;
        }
        budget -= chunk.byteLength;
        client.write(chunk);
      });
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("close", end).on("error", end);
      upstream.on("close", end).on("error", end);
    });
    relay = new Relay(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    relay.port = (server.address() as net.AddressInfo).port;
    return relay;
  }

  /** Connections opened from now on pass `bytes` of what the target sends, then stall. */
  stallAfter(bytes: number): void {
    this.#passBytes = bytes;
  }

  /** From now on, nothing the target sends reaches the initiator. */
  stall(): void {
    this.#stalled = true;
  }

  /** Closes every relayed connection. */
  cut(): void {
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }

  /** Cuts and stops listening. */
  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** A portal that accepts connections and never says a word. */
export async function silentPortal(): Promise<{ port: number; connections: number; open: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    // Read (and drop) what arrives, so the end of the connection is seen.
    socket.on("close", () => sockets.delete(socket)).on("error", () => {}).resume();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return connections;
    },
    get open() {
      return sockets.size;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
