/**
 * The public {@linkcode DomainCollection} of a connection, and the one place where a
 * {@linkcode DomainConfig} is checked (by its schema, `core/config/domain_config.ts`) before it reaches a driver.
 *
 * @module
 */
import { checkDomainConfig, MAX_DOMAIN_NAME_LENGTH } from "../config/domain_config.ts";
import type { DefineXmlOptions, Domain, DomainCollection, DomainConfig, DomainInfo, DomainListing } from "../domain.ts";
import { NotFoundError } from "../errors.ts";
import type { SignalOptions } from "../options.ts";
import { requireOp } from "../require_op.ts";
import { assertName } from "../validate.ts";
import { domainFromXml } from "../xml/domain_xml.ts";
import { createDomainHandle, type DomainHandleContext } from "./domain_handle.ts";

/**
 * An entry of `listWithInfo()` whose handle is made when first asked for: a daemon listing 100
 * domains for each `virsh list --all` reads only the infos, and a handle is some twenty closures.
 */
class Listing implements DomainListing {
  readonly info: DomainInfo;
  readonly #ctx: DomainHandleContext;
  #domain: Domain | undefined;
  constructor(ctx: DomainHandleContext, info: DomainInfo) {
    this.#ctx = ctx;
    this.info = info;
  }
  get domain(): Domain {
    return (this.#domain ??= createDomainHandle(this.#ctx, this.info.name, this.info.uuid));
  }
}

/**
 * Creates the domain collection of a connection.
 *
 * @param ctx The connection's driver, job list and open-check.
 * @returns The frozen collection.
 * @example
 * ```ts
 * import { createDomainCollection } from "./domain_collection.ts";
 * const domains = createDomainCollection({
 *   driver: { listDomains: async () => [], domainInfo: async () => { throw new Error("none"); },
 *             domainConfig: async () => { throw new Error("none"); }, close: async () => {} },
 *   driverName: "demo",
 *   jobs: { list: async () => [], get: async () => { throw new Error("none"); } },
 *   diskJobs: {} as never,
 *   assertOpen() {},
 * });
 * if ((await domains.list()).length !== 0) throw new Error("unexpected");
 * ```
 */
export function createDomainCollection(ctx: DomainHandleContext): DomainCollection {
  const { driver } = ctx;
  const open = (what: string, options: SignalOptions | undefined) => {
    ctx.assertOpen(what);
    options?.signal?.throwIfAborted();
  };
  const listing = async (options: SignalOptions | undefined): Promise<DomainListing[]> => {
    open("list domains", options);
    const names = await driver.listDomains(options);
    const entries = await Promise.all(names.map(async (name) => {
      try {
        return new Listing(ctx, await driver.domainInfo(name, options));
      } catch (error) {
        // Undefined between the two calls: it is simply no longer in the list.
        if (error instanceof NotFoundError) return undefined;
        throw error;
      }
    }));
    return entries.filter((entry): entry is Listing => entry !== undefined);
  };
  return Object.freeze({
    async list(options?: SignalOptions): Promise<Domain[]> {
      return (await listing(options)).map((entry) => entry.domain);
    },
    listWithInfo: (options?: SignalOptions) => listing(options),
    async get(name: string, options?: SignalOptions): Promise<Domain> {
      assertName(name, "domain name", { maxLength: MAX_DOMAIN_NAME_LENGTH });
      open(`get domain "${name}"`, options);
      const info = await driver.domainInfo(name, options);
      return createDomainHandle(ctx, info.name, info.uuid);
    },
    async define(config: DomainConfig, options?: SignalOptions): Promise<Domain> {
      const normalized = checkDomainConfig(config);
      open(`define domain "${normalized.name}"`, options);
      await requireOp(driver, "defineDomain", ctx.driverName)(normalized, options);
      return createDomainHandle(ctx, normalized.name, normalized.uuid!);
    },
    async defineXml(xml: string, options?: DefineXmlOptions): Promise<Domain> {
      const { config, warnings } = domainFromXml(xml, options);
      for (const warning of warnings) options?.onWarning?.(warning);
      return await this.define(config, options);
    },
  });
}
