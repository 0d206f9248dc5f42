/**
 * A small three-image chain on the `test` driver for the block copy and commit suites: a raw base, a
 * qcow2 middle and a qcow2 top, each with data of its own, under a domain `web1` with disk `vda`.
 */
import { createHash } from "node:crypto";
import { connect, createVirtualClock, MiB } from "../../../mod.ts";
import type { Connection } from "../../../core/connection.ts";
import type { Job } from "../../../core/job.ts";
import type { Volume } from "../../../core/volume.ts";

export const CAPACITY = MiB(4);

/** The fixture: base.raw <- mid.qcow2 <- top.qcow2, and `web1` on top.qcow2 in `state`. */
export function chainFixture(state: "running" | "shutoff") {
  const volume = (name: string, format: string, content: unknown[], backing?: string) => ({
    name,
    capacityBytes: CAPACITY,
    format,
    ...(backing ? { backing: { pool: "p", name: backing } } : {}),
    content,
  });
  return {
    pools: [{
      name: "p",
      type: "memory",
      capacityBytes: MiB(256),
      volumes: [
        volume("base.raw", "raw", [{ offset: 0, length: MiB(3), fill: "random", seed: 1 }]),
        volume("mid.qcow2", "qcow2", [{ offset: MiB(1), length: MiB(1), fill: 0x11 }], "base.raw"),
        volume("top.qcow2", "qcow2", [{ offset: MiB(2) + 4096, length: 65536, fill: 0x22 }], "mid.qcow2"),
      ],
    }],
    domains: [{
      name: "web1",
      vcpus: 1,
      memoryBytes: MiB(512),
      state,
      disks: [{ target: "vda", volume: { pool: "p", name: "top.qcow2" }, format: "qcow2" }],
    }],
  };
}

/** Opens `test:///empty` on a virtual clock and loads the chain. */
export async function openChain(state: "running" | "shutoff"): Promise<Connection> {
  const conn = await connect("test:///empty", { clock: createVirtualClock() });
  await conn.testing!.load(chainFixture(state));
  return conn;
}

/** Everything a volume reads as the guest sees it. */
export async function contentOf(volume: Volume): Promise<Uint8Array> {
  const job = await volume.download();
  const out = new Uint8Array(CAPACITY);
  let at = 0;
  const reader = job.readable.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    out.set(r.value, at);
    at += r.value.byteLength;
  }
  await job.wait();
  return out;
}

/** SHA-256 of what a volume reads. */
export async function hashOf(volume: Volume): Promise<string> {
  return createHash("sha256").update(await contentOf(volume)).digest("hex");
}

/** Resolves once the job is `ready` (listening first, so an event that comes meanwhile is not missed). */
export async function whenReady(conn: Connection, job: Job): Promise<void> {
  let off = () => {};
  const ready = new Promise<void>((resolve) => {
    off = conn.events.on("job:ready", (e) => e.job.id === job.id && resolve());
  });
  try {
    if ((await job.info()).state !== "ready") await ready;
  } finally {
    off();
  }
}
