/**
 * virtkitd's access rules and its answers to bad input: read-only clients are refused every procedure
 * that changes something (each one, at the protocol level, and the virsh commands), unserved procedures
 * answer VIR_ERR_NO_SUPPORT with their name, calls before open are refused, and malformed frames (bad
 * XDR, unknown programs, oversized or truncated frames) hurt only the client that sent them.
 */
import { writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { voidCodec } from "../../drivers/remote/rpc/codec.ts";
import { LibvirtErrorCode } from "../../drivers/remote/rpc/errors.ts";
import { encodePacket, MessageStatus, MessageType, REMOTE_PROGRAM } from "../../drivers/remote/rpc/packet.ts";
import { procedure } from "../../drivers/remote/rpc/protocol/common.ts";
import { AUTH_LIST, CONNECT_OPEN } from "../../drivers/remote/rpc/protocol/connect.ts";
import { CONNECT_LIST_ALL_DOMAINS } from "../../drivers/remote/rpc/protocol/domain.ts";
import { classifiedProcedures } from "../../daemon/procedure_access.ts";
import { SERVED_REMOTE_GROUPS } from "../../daemon/remote/program.ts";
import { errorCodeOf, rawExchange, rpcClient } from "./_support/raw_client.ts";
import { skipDaemon, type VirtkitdProcess, useVirtkitd, virsh } from "./_support/virtkitd.ts";

describe.skipIf(skipDaemon)("virtkitd access rules and faults", () => {
  let daemon: VirtkitdProcess;
  let uri: string;
  useVirtkitd((started) => {
    daemon = started;
    uri = started.uri("test:///default");
  });

  it("refuses every write procedure to a read-only client, and allows every read one", async () => {
    const { client, socket } = await rpcClient(daemon.socket);
    try {
      await client.call(CONNECT_OPEN, { name: "test:///default", flags: 1 });
      const writes = classifiedProcedures().filter(([, , access]) => access === "write");
      // Every served procedure is classified, so none falls through to the "unknown" path by mistake.
      const unclassified = SERVED_REMOTE_GROUPS.flat().map((s) => s.proc.name).filter((name) =>
        !classifiedProcedures().some(([, known]) => known === name)
      );
      expect(unclassified).toEqual([]);
      for (const [number, name] of writes) {
        // No arguments at all: the access check comes before decoding, as libvirt's does.
        const code = await errorCodeOf(client.call(procedure(number, name, voidCodec, voidCodec), undefined));
        expect({ name, code }).toEqual({ name, code: LibvirtErrorCode.OPERATION_DENIED });
      }
      const listed = await client.call(CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 });
      expect(listed.domains.map((d) => d.name)).toEqual(["test"]);
    } finally {
      socket.destroy();
    }
  });

  it("refuses the mutating virsh commands with -r, and serves the read-only ones", async () => {
    const file = `${daemon.dir}/ro.xml`;
    writeFileSync(file, "<domain type='test'><name>ro</name><memory>1024</memory><vcpu>1</vcpu></domain>");
    const commands = [
      ["destroy", "test"], ["suspend", "test"], ["shutdown", "test"], ["undefine", "test"], ["define", file],
      ["blockpull", "test", "vda"], ["pool-define-as", "x", "dir", "--target", `${daemon.dir}/x`],
      ["pool-refresh", "default-pool"], ["pool-destroy", "default-pool"], ["vol-create-as", "default-pool", "v", "1M"],
      ["vol-delete", "--pool", "default-pool", "test.qcow2"], ["vol-wipe", "--pool", "default-pool", "test.qcow2"],
      ["vol-resize", "--pool", "default-pool", "test.qcow2", "1G"],
      ["vol-download", "--pool", "default-pool", "test.qcow2", `${daemon.dir}/dl.bin`],
    ];
    for (const args of commands) {
      const result = await virsh(uri, ["-r", ...args]);
      expect({ args, code: result.code, denied: /read only access prevents/.test(result.stderr) }).toEqual({ args, code: 1, denied: true });
    }
    expect((await virsh(uri, ["-r", "domstate", "test"])).stdout.trim()).toBe("running");
    expect((await virsh(uri, ["-r", "vol-list", "default-pool"])).code).toBe(0);
    expect((await virsh(uri, ["-r", "dumpxml", "test"])).code).toBe(0);
  });

  it("answers unserved procedures with VIR_ERR_NO_SUPPORT naming them", async () => {
    const caps = await virsh(uri, ["capabilities"]);
    expect(caps.code).not.toBe(0);
    expect(caps.stderr).toMatch(/this function is not supported by the connection driver: REMOTE_PROC_CONNECT_GET_CAPABILITIES/);
    expect((await virsh(uri, ["nodeinfo"])).stdout).toMatch(/^CPU\(s\):\s+\d+$/m);
    // What virtkit's block copy does not offer is refused by name, not ignored.
    const copy = await virsh(uri, ["blockcopy", "test", "vda", `${daemon.dir}/copy.qcow2`, "--buf-size", "1048576"]);
    expect(copy.stderr).toMatch(/not supported by the connection driver: virDomainBlockCopy with buf-size/);
    expect((await virsh(uri, ["blockjob", "test", "vda", "--info"])).stdout).toMatch(/No current block job/);
    const { client, socket } = await rpcClient(daemon.socket);
    try {
      await client.call(CONNECT_OPEN, { name: "test:///default", flags: 0 });
      expect(await errorCodeOf(client.call(procedure(9999, "NO_SUCH", voidCodec, voidCodec), undefined))).toBe(LibvirtErrorCode.NO_SUPPORT);
      // The connection is still fine after an error.
      expect((await client.call(CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 })).ret).toBe(1);
    } finally {
      socket.destroy();
    }
  });

  it("answers keepalive PINGs, so a virsh with -k 1 -K 2 stays connected through a 4 s wait", async () => {
    const result = await virsh(uri, ["-k", "1", "-K", "2", "event", "--all", "--timeout", "4"]);
    expect(result.stdout).toMatch(/events received: 0/);
    expect(result.stderr).not.toMatch(/keepalive|Disconnected/);
  });

  it("refuses calls before open, a second open, and a URI that is not allowed", async () => {
    const { client, socket } = await rpcClient(daemon.socket);
    try {
      expect(await client.call(AUTH_LIST, undefined)).toEqual([0]);
      expect(await errorCodeOf(client.call(CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 }))).toBe(LibvirtErrorCode.INTERNAL_ERROR);
      expect(await errorCodeOf(client.call(CONNECT_OPEN, { name: "test:///empty", flags: 0 }))).toBe(LibvirtErrorCode.NO_CONNECT);
      expect(await errorCodeOf(client.call(CONNECT_OPEN, { name: "not a uri", flags: 0 }))).toBe(LibvirtErrorCode.INVALID_ARG);
      await client.call(CONNECT_OPEN, { name: "test:///default", flags: 0 });
      expect(await errorCodeOf(client.call(CONNECT_OPEN, { name: "test:///default", flags: 0 }))).toBe(LibvirtErrorCode.INTERNAL_ERROR);
    } finally {
      socket.destroy();
    }
    const denied = await virsh(daemon.uri("test:///empty"), ["list"]);
    expect(denied.stderr).toMatch(/No connection driver available for "test:\/\/\/empty"/);
  });

  it("answers bad XDR and unknown programs with errors, and closes only a client that breaks framing", async () => {
    const { client: bystander, socket: bystanderSocket } = await rpcClient(daemon.socket);
    try {
      await bystander.call(CONNECT_OPEN, { name: "test:///default", flags: 0 });
      const header = (program: number, proc: number) => ({ program, version: 1, procedure: proc, type: MessageType.CALL, serial: 7, status: MessageStatus.OK });
      // CONNECT_OPEN whose string length runs past the frame: an ERROR reply, connection kept.
      const badXdr = await rawExchange(daemon.socket, encodePacket(header(REMOTE_PROGRAM, 1), new Uint8Array([0, 0, 0, 1, 0, 0, 0, 200])));
      expect(badXdr.closedByDaemon).toBe(false);
      expect(statusOf(badXdr.reply)).toBe(MessageStatus.ERROR);
      const unknown = await rawExchange(daemon.socket, encodePacket(header(0x12345678, 1)));
      expect(unknown.closedByDaemon).toBe(false);
      expect(statusOf(unknown.reply)).toBe(MessageStatus.ERROR);
      // A length word beyond 16 MiB, and one below the header size: closed at once.
      for (const length of [0x7fffffff, 8]) {
        const frame = new Uint8Array(28);
        new DataView(frame.buffer).setUint32(0, length);
        const result = await rawExchange(daemon.socket, frame, 5_000);
        expect(result.closedByDaemon).toBe(true);
      }
      // A reply sent by a client is a protocol violation too.
      const reply = await rawExchange(daemon.socket, encodePacket({ ...header(REMOTE_PROGRAM, 1), type: MessageType.REPLY }), 5_000);
      expect(reply.closedByDaemon).toBe(true);
      // Nobody else noticed.
      expect((await bystander.call(CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 })).ret).toBe(1);
    } finally {
      bystanderSocket.destroy();
    }
  });
});

function statusOf(reply: Uint8Array): number | undefined {
  if (reply.byteLength < 28) return undefined;
  return new DataView(reply.buffer, reply.byteOffset).getUint32(24);
}
