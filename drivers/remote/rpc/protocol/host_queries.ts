/**
 * Message shapes of REMOTE procedures that `virsh dominfo` and friends send and that only a server needs
 * (virtkit's remote driver does not call them): the security model and label, the managed-save probe,
 * domain messages, whether the connection is secure, and the node's info. Numbers and shapes from
 * libvirt's `src/remote/remote_protocol.x`, written here by hand.
 *
 * @example The node info's fixed `char model[32]`: 32 words, no length
 * ```ts
 * import { decode, encode } from "../codec.ts";
 * import { NODE_GET_INFO } from "./host_queries.ts";
 * const info = { model: "x86_64", memory: 1024, cpus: 2, mhz: 0, nodes: 1, sockets: 1, cores: 2, threads: 1 };
 * const bytes = encode(NODE_GET_INFO.ret, info);
 * if (bytes.byteLength !== 32 * 4 + 8 + 6 * 4 || decode(NODE_GET_INFO.ret, bytes).model !== "x86_64") throw new Error("unexpected");
 * ```
 *
 * @module
 */
import { array, charArray, int, struct, uhyper, uint, voidCodec } from "../codec.ts";
import { domainRef, nonnullString, procedure } from "./common.ts";

/** `VIR_SECURITY_MODEL_BUFLEN` (and the DOI's, `VIR_SECURITY_DOI_BUFLEN`, is smaller). */
const SECURITY_MODEL_MAX = 257;
/** `VIR_SECURITY_LABEL_BUFLEN`. */
const SECURITY_LABEL_MAX = 4097;

/** `virNodeGetSecurityModel`: `char model<>; char doi<>` (each char a 4-byte word). */
export const NODE_GET_SECURITY_MODEL = procedure(
  122,
  "NODE_GET_SECURITY_MODEL",
  voidCodec,
  struct({ model: charArray(SECURITY_MODEL_MAX), doi: charArray(SECURITY_MODEL_MAX) }),
);

/** `virDomainGetSecurityLabel`: `char label<>; int enforcing`. */
export const DOMAIN_GET_SECURITY_LABEL = procedure(
  121,
  "DOMAIN_GET_SECURITY_LABEL",
  struct({ dom: domainRef }),
  struct({ label: charArray(SECURITY_LABEL_MAX), enforcing: int }),
);

/** `virDomainHasManagedSaveImage`. */
export const DOMAIN_HAS_MANAGED_SAVE_IMAGE = procedure(
  183,
  "DOMAIN_HAS_MANAGED_SAVE_IMAGE",
  struct({ dom: domainRef, flags: uint }),
  int,
);

/** `virDomainGetMessages`: `string msgs<REMOTE_DOMAIN_MESSAGES_MAX = 2048>`. */
export const DOMAIN_GET_MESSAGES = procedure(
  426,
  "DOMAIN_GET_MESSAGES",
  struct({ dom: domainRef, flags: uint }),
  array(nonnullString, 2048),
);

/** `virConnectIsSecure`. */
export const CONNECT_IS_SECURE = procedure(149, "CONNECT_IS_SECURE", voidCodec, int);

/** `virNodeGetInfo`: `char model[32]` (a fixed array: 32 words, no length), memory in KiB, CPU topology. */
export const NODE_GET_INFO = procedure(6, "NODE_GET_INFO", voidCodec, struct({
  model: {
    encode(w, v: string) {
      const bytes = new TextEncoder().encode(v).subarray(0, 31);
      for (let i = 0; i < 32; i++) w.int(bytes[i] ?? 0);
    },
    decode(r) {
      const codes: number[] = [];
      for (let i = 0; i < 32; i++) codes.push(r.int() & 0xff);
      const end = codes.indexOf(0);
      return new TextDecoder().decode(Uint8Array.from(end < 0 ? codes : codes.slice(0, end)));
    },
  },
  memory: uhyper,
  cpus: int,
  mhz: int,
  nodes: int,
  sockets: int,
  cores: int,
  threads: int,
}));
