/**
 * Pool definitions outlive the connection that defined them when the connection has a state directory
 * (qemu always; test only when given one), as libvirt's storage driver keeps them in its config dir.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connect, MiB, NotFoundError } from "../../mod.ts";

let scratch: string;
beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), "virtkit-persist-"));
});
afterEach(() => rmSync(scratch, { recursive: true, force: true }));

async function defineImages(uri: string, options: { stateDir?: string }) {
  const conn = await connect(uri, options);
  const pool = await conn.pools.create({ name: "images", type: "dir", path: join(scratch, "images") });
  await pool.volumes.create({ name: "disk.raw", capacityBytes: MiB(4) });
  await conn.close();
}

describe("pool definitions and a state directory", () => {
  it.each([
    { driver: "test", uri: "test:///empty" },
    { driver: "qemu", uri: "qemu:///session" },
  ])("a $driver connection finds the pools an earlier one defined in the same state directory", async ({ uri }) => {
    const stateDir = join(scratch, "state");
    await defineImages(uri, { stateDir });
    const again = await connect(uri, { stateDir });
    const pool = await again.pools.get("images");
    expect(await pool.config()).toEqual({ name: "images", type: "dir", path: join(scratch, "images") });
    // Like a libvirt pool without autostart: defined again, inactive until started.
    expect((await pool.info()).state).toBe("inactive");
    await pool.start();
    expect((await pool.volumes.list()).map((v) => v.name)).toEqual(["disk.raw"]);
    await again.close();
    const other = await connect(uri, { stateDir: join(scratch, "elsewhere") });
    await expect(other.pools.get("images")).rejects.toThrow(NotFoundError);
    await other.close();
  });

  it("a test connection without a state directory forgets its pools when it closes", async () => {
    await defineImages("test:///empty", {});
    const again = await connect("test:///empty");
    await expect(again.pools.get("images")).rejects.toThrow(NotFoundError);
    await again.close();
  });
});
