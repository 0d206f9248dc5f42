/**
 * Domain references (`remote_nonnull_domain`: name, UUID, id) by name, cached the way libvirt's own
 * clients hold a `virDomainPtr`: a lookup once, then calls by reference. libvirtd resolves a reference
 * by UUID, so a cached one can only go stale when the domain is undefined (and maybe redefined under the
 * same name): then the call fails with NO_DOMAIN, the entry is dropped, and the call is retried once
 * after a fresh lookup. Lifecycle events keep the entries current too (new id on start, gone on undefine).
 *
 * @module
 */
import { NotFoundError } from "../../core/errors.ts";
import type { SignalOptions } from "../../core/options.ts";
import type { RpcClient } from "./rpc/client.ts";
import type { DomainRefValue } from "./rpc/protocol/common.ts";
import { DOMAIN_LOOKUP_BY_NAME } from "./rpc/protocol/domain.ts";

/**
 * The cache of one connection.
 *
 * @example
 * ```ts
 * import { DomainRefs } from "./domain_refs.ts";
 * const refs = new DomainRefs({} as never);
 * refs.remember({ name: "vm", uuid: "11111111-2222-3333-4444-555555555555", id: -1 });
 * if (refs.cached("vm")?.id !== -1) throw new Error("unexpected");
 * refs.forget("vm");
 * if (refs.cached("vm") !== undefined) throw new Error("unexpected");
 * ```
 */
export class DomainRefs {
  readonly #client: RpcClient;
  readonly #byName = new Map<string, DomainRefValue>();

  /**
   * @param client The connection's RPC client.
   */
  constructor(client: RpcClient) {
    this.#client = client;
  }

  /** The cached reference, if any. */
  cached(name: string): DomainRefValue | undefined {
    return this.#byName.get(name);
  }

  /** Records a reference libvirt returned. */
  remember(ref: DomainRefValue): void {
    this.#byName.set(ref.name, ref);
  }

  /** Drops a name. */
  forget(name: string): void {
    this.#byName.delete(name);
  }

  /** Drops whatever names `uuid` (a rename or undefine seen in an event). */
  forgetUuid(uuid: string): void {
    for (const [name, ref] of this.#byName) if (ref.uuid === uuid) this.#byName.delete(name);
  }

  /**
   * The reference of `name`, looked up when not cached.
   *
   * @throws {NotFoundError} When libvirt has no such domain.
   */
  async get(name: string, options?: SignalOptions): Promise<DomainRefValue> {
    const held = this.#byName.get(name);
    if (held) return held;
    const ref = await this.#client.call(DOMAIN_LOOKUP_BY_NAME, name, { signal: options?.signal, objectName: name });
    this.#byName.set(name, ref);
    return ref;
  }

  /**
   * Runs `fn` with the reference of `name`; when a cached reference turns out stale (NO_DOMAIN), looks
   * the name up again and retries once.
   *
   * @param name Domain name.
   * @param fn The call.
   * @param options Signal.
   * @returns What `fn` returns.
   */
  with<T>(name: string, fn: (ref: DomainRefValue) => Promise<T>, options?: SignalOptions): Promise<T> {
    const held = this.#byName.get(name);
    // The common case, a cached reference: no lookup to await first (every call of a sequential
    // get + info loop comes here).
    if (held) return fn(held).catch((error: unknown) => this.#retry(name, error, fn, options));
    return this.get(name, options).then((ref) => fn(ref).catch((error: unknown) => {
      this.#dropIfGone(name, error);
      throw error;
    }));
  }

  /** A cached reference failed: when the domain is gone (or was redefined), look it up once more. */
  async #retry<T>(name: string, error: unknown, fn: (ref: DomainRefValue) => Promise<T>, options?: SignalOptions): Promise<T> {
    this.#dropIfGone(name, error);
    return await fn(await this.get(name, options));
  }

  #dropIfGone(name: string, error: unknown): void {
    if (!(error instanceof NotFoundError) || error.objectType !== "domain") throw error;
    this.#byName.delete(name);
  }
}
