import { describe, expect, it } from "vitest";
import { inflateCluster } from "../../../../core/image/qcow2/inflate.ts";

async function deflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

describe("inflateCluster", () => {
  const cluster = new Uint8Array(65536).map((_, i) => (i * 7) % 251);

  it("inflates a cluster, with or without unrelated bytes after the deflate data", async () => {
    const packed = await deflate(cluster);
    expect(await inflateCluster(packed, cluster.byteLength)).toEqual(cluster);
    const padded = new Uint8Array(packed.byteLength + 300).fill(0xab);
    padded.set(packed);
    expect(await inflateCluster(padded, cluster.byteLength)).toEqual(cluster);
  });

  it("gives undefined for truncated or garbage input", async () => {
    const packed = await deflate(cluster);
    expect(await inflateCluster(packed.subarray(0, packed.byteLength - 20), cluster.byteLength)).toBeUndefined();
    expect(await inflateCluster(new Uint8Array(600).fill(0xff), cluster.byteLength)).toBeUndefined();
  });
});
