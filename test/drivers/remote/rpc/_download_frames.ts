/**
 * The frames of a volume download as libvirtd sends them, for the receive-path tests (buffer reuse,
 * receive slabs): one volume, the download's header, patterned data and the data and end-of-data frames.
 */
import type { RpcStream } from "../../../../drivers/remote/rpc/stream.ts";
import { encodePacket, MessageStatus, MessageType, REMOTE_PROGRAM } from "../../../../drivers/remote/rpc/packet.ts";

/** The volume every download of these tests names. */
export const vol = { pool: "p", name: "v", key: "/p/v" };
/** The header of the download's stream frames (STORAGE_VOL_DOWNLOAD, serial 0). */
export const DOWNLOAD = { program: REMOTE_PROGRAM, version: 1, procedure: 209, serial: 0 };
/** `length` bytes of a pattern that differs by `seed`, so misplaced bytes show. */
export const pattern = (length: number, seed: number) => Uint8Array.from({ length }, (_, i) => (i * 31 + seed) & 255);
/** The parts, one after the other. */
export const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
};
/** A stream data frame carrying `bytes`. */
export const dataFrame = (bytes: Uint8Array) => encodePacket({ ...DOWNLOAD, type: MessageType.STREAM, status: MessageStatus.CONTINUE }, bytes);
/** The empty data frame that ends the data. */
export const endOfData = () => encodePacket({ ...DOWNLOAD, type: MessageType.STREAM, status: MessageStatus.CONTINUE });
/** Reads a stream to its end, `chunkBytes` at a time, and returns what it carried. */
export async function readAll(stream: RpcStream, chunkBytes = 7000): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (;;) {
    const target = new Uint8Array(chunkBytes);
    const n = await stream.read(target);
    if (n === 0) return concat(parts);
    parts.push(target.subarray(0, n));
  }
}
