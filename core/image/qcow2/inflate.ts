/**
 * Decompresses one compressed qcow2 cluster (zlib's raw deflate). The web `DecompressionStream` does the
 * work; the stored bytes end anywhere in their last 512-byte sector, and where the runtime's stream
 * rejects bytes after the end of the deflate data (Deno does), the end is found by a short binary search.
 *
 * @module
 */

/**
 * Inflates raw deflate data until `outBytes` bytes came out.
 *
 * @param input Compressed bytes, possibly followed by unrelated bytes.
 * @param outBytes The cluster size.
 * @returns The cluster, or `undefined` when the data does not inflate to a whole cluster.
 */
export async function inflateCluster(input: Uint8Array, outBytes: number): Promise<Uint8Array | undefined> {
  const first = await inflateOnce(input, outBytes);
  if (first.ok) return first.out;
  if (!first.junk) return undefined;
  // Bytes after the deflate end were rejected. qemu rounds the stored length up to a sector, so the end
  // lies in the last 512 bytes: a shorter input either comes out short (too short) or is rejected again
  // (still too long), which makes a binary search of at most 10 attempts.
  let low = Math.max(0, input.byteLength - 512);
  let high = input.byteLength;
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    const attempt = await inflateOnce(input.subarray(0, middle), outBytes);
    if (attempt.ok) return attempt.out;
    if (attempt.junk) high = middle;
    else low = middle;
  }
  return undefined;
}

interface Attempt {
  ok: boolean;
  out: Uint8Array;
  produced: number;
  /** The stream rejected the input as running past the end of the deflate data. */
  junk: boolean;
}

async function inflateOnce(input: Uint8Array, outBytes: number): Promise<Attempt> {
  const out = new Uint8Array(outBytes);
  let produced = 0;
  const stream = new DecompressionStream("deflate-raw");
  const writer = stream.writable.getWriter();
  const written = writer.write(input as Uint8Array<ArrayBuffer>).then(() => writer.close()).catch(() => undefined);
  const reader = stream.readable.getReader();
  try {
    while (produced < outBytes) {
      const { value, done } = await reader.read();
      if (done) break;
      const n = Math.min(value.byteLength, outBytes - produced);
      out.set(value.subarray(0, n), produced);
      produced += n;
    }
  } catch (error) {
    await written;
    const text = error instanceof Error ? error.message : String(error);
    return { ok: false, out, produced, junk: !/unexpected end|premature|truncat|incomplete/i.test(text) };
  }
  await reader.cancel().catch(() => undefined);
  await written;
  return { ok: produced === outBytes, out, produced, junk: false };
}
