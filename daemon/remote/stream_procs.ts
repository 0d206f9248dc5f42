/**
 * `vol-upload` and `vol-download` (procedures 208 and 209): the call opens a libvirt STREAM on its
 * serial, carried over virtkit's upload and download jobs. As libvirtd does it (libvirt-rpc.md §10):
 * upload takes STREAM CONTINUE frames of data until the client's empty STREAM OK, and answers STREAM OK
 * once the job completed; download sends CONTINUE frames of at most 262,120 bytes, an empty CONTINUE at
 * the end, and answers the client's STREAM OK with STREAM OK. A client's STREAM ERROR aborts the job and
 * is answered with STREAM OK; a failure on the daemon's side is a STREAM ERROR carrying the error.
 * Both directions apply backpressure: upload stops reading the client's socket while the volume is
 * behind, download waits for the client's socket to drain.
 *
 * A download opened with `SPARSE_STREAM` (virtkit's remote driver, `virsh vol-download --sparse`) sends
 * each run of all-zero chunks as one STREAM_HOLE frame with its length instead of the zeros, as
 * libvirtd sends a file's holes; the client reads them as zeros or skips them.
 *
 * @module
 */
import { isAllZero } from "../../core/copy/zero_bytes.ts";
import type { DownloadJob, UploadJob } from "../../core/job.ts";
import { encodePacket, MessageStatus, MessageType, STREAM_CHUNK_BYTES } from "../../drivers/remote/rpc/packet.ts";
import { remoteError, streamHole } from "../../drivers/remote/rpc/protocol/common.ts";
import { STORAGE_VOL_DOWNLOAD, STORAGE_VOL_UPLOAD, VolumeStreamFlags } from "../../drivers/remote/rpc/protocol/storage.ts";
import { type CallContext, errorRecordOf, serve, type ServedProcedure } from "../dispatch.ts";
import { checkFlags } from "./domain_procs.ts";
import { volumeOf } from "./storage_refs.ts";

/** Upload bytes queued for the volume before the client's socket is paused. */
const UPLOAD_HIGH_WATER_BYTES = 4 * 1024 * 1024;

function sender(ctx: CallContext) {
  const { header, session } = ctx;
  const frame = (status: number, payload?: Uint8Array | ((w: Parameters<typeof remoteError.encode>[0]) => void)) =>
    session.outbox.send(encodePacket({ ...header, type: MessageType.STREAM, status }, payload));
  return {
    data: (bytes: Uint8Array) => frame(MessageStatus.CONTINUE, bytes),
    /** A hole of a sparse stream: a `virNetStreamHole` (hyper length, uint flags 0). */
    hole: (length: number) =>
      session.outbox.send(encodePacket({ ...header, type: MessageType.STREAM_HOLE, status: MessageStatus.CONTINUE }, (w) => streamHole.encode(w, { length, flags: 0 }))),
    ok: () => frame(MessageStatus.OK),
    error: (error: unknown) => {
      const record = errorRecordOf(error);
      frame(MessageStatus.ERROR, (w) => remoteError.encode(w, record));
    },
  };
}

function rangeOf(offset: number, length: number) {
  // libvirt: length 0 means "to the end of the volume".
  return { offset, ...(length === 0 ? {} : { length }) };
}

function serveUpload(ctx: CallContext, job: UploadJob): void {
  const { session, header } = ctx;
  const send = sender(ctx);
  const writer = job.writable.getWriter();
  let chain: Promise<void> = Promise.resolve();
  let queuedBytes = 0;
  let holding = false;
  let over = false;
  const finish = () => {
    over = true;
    session.streams.delete(header.serial);
    if (holding) session.releaseInput();
    holding = false;
  };
  const fail = (error: unknown) => {
    if (over) return;
    finish();
    send.error(error);
    void writer.abort(error).catch(() => {});
  };
  session.streams.set(header.serial, {
    onFrame(status, payload) {
      if (over) return;
      if (status === MessageStatus.CONTINUE) {
        // Copied: the payload is a view into the socket's chunk, and the sink may keep or transfer it.
        const chunk = payload.slice();
        queuedBytes += chunk.byteLength;
        if (!holding && queuedBytes > UPLOAD_HIGH_WATER_BYTES) {
          holding = true;
          session.holdInput();
        }
        chain = chain.then(async () => {
          await writer.write(chunk);
          queuedBytes -= chunk.byteLength;
          if (holding && queuedBytes <= UPLOAD_HIGH_WATER_BYTES / 2) {
            holding = false;
            session.releaseInput();
          }
        });
        chain.catch(fail);
      } else if (status === MessageStatus.OK) {
        chain.then(() => writer.close()).then(() => job.wait()).then(() => {
          if (over) return;
          finish();
          send.ok();
        }, fail);
      } else {
        finish();
        void writer.abort(new Error("The client aborted the upload")).catch(() => {});
        void job.abort().catch(() => {});
        send.ok();
      }
    },
    onClientGone() {
      finish();
      void writer.abort(new Error("The client went away")).catch(() => {});
      void job.abort().catch(() => {});
    },
  });
}

function serveDownload(ctx: CallContext, job: DownloadJob, sparse: boolean): void {
  const { session, header } = ctx;
  const send = sender(ctx);
  const reader = job.readable.getReader();
  let over = false;
  let sentEnd = false;
  /** Zeros read and not sent yet (sparse): one hole frame for the whole run. */
  let holeBytes = 0;
  const sendHole = async () => {
    if (holeBytes === 0) return;
    await session.outbox.whenWritable();
    if (over) return;
    send.hole(holeBytes);
    holeBytes = 0;
  };
  const finish = () => {
    over = true;
    session.streams.delete(header.serial);
  };
  session.streams.set(header.serial, {
    onFrame(status) {
      if (over) return;
      finish();
      if (status === MessageStatus.OK && sentEnd) {
        send.ok();
        return;
      }
      // ERROR (abort), or OK before the end: stop the job and confirm.
      void reader.cancel().catch(() => {});
      void job.abort().catch(() => {});
      send.ok();
    },
    onClientGone() {
      finish();
      void reader.cancel().catch(() => {});
      void job.abort().catch(() => {});
    },
  });
  // Runs after the call's reply: data frames must follow it.
  ctx.afterReply(() => {
    void (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (over) return;
          if (done) break;
          if (sparse && isAllZero(value)) {
            holeBytes += value.byteLength;
            continue;
          }
          await sendHole();
          for (let at = 0; at < value.byteLength; at += STREAM_CHUNK_BYTES) {
            await session.outbox.whenWritable();
            if (over) return;
            send.data(value.subarray(at, Math.min(value.byteLength, at + STREAM_CHUNK_BYTES)));
          }
        }
        await job.wait();
        await sendHole();
        if (over) return;
        sentEnd = true;
        send.data(new Uint8Array(0));
      } catch (error) {
        if (over) return;
        finish();
        send.error(error);
      }
    })();
  });
}

/** The stream procedures. */
export const STREAM_PROCEDURES: readonly ServedProcedure[] = [
  serve(STORAGE_VOL_UPLOAD, async (ctx, { vol, offset, length, flags }) => {
    checkFlags(flags, 0, "virStorageVolUpload"); // SPARSE_STREAM (holes as STREAM_HOLE) is not spoken
    const job = await (await volumeOf(ctx, vol)).upload(rangeOf(offset, length));
    serveUpload(ctx, job);
  }),
  serve(STORAGE_VOL_DOWNLOAD, async (ctx, { vol, offset, length, flags }) => {
    checkFlags(flags, VolumeStreamFlags.SPARSE_STREAM, "virStorageVolDownload");
    const job = await (await volumeOf(ctx, vol)).download(rangeOf(offset, length));
    serveDownload(ctx, job, (flags & VolumeStreamFlags.SPARSE_STREAM) !== 0);
  }),
];
