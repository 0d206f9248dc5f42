// PLACEHOLDER: the registry helper replaces this file with the implementation (parseUri).

/** A parsed connection URI: `scheme[+transport]://[host]/path?query`. */
export interface ConnectionUri {
  /** The whole URI as given. */
  readonly href: string;
  /** Driver scheme (`"qemu"`, `"test"`). */
  readonly scheme: string;
  /** Transport after `+` (`"tls"`, `"unix"`), if any. */
  readonly transport?: string;
  /** Host, empty for local. */
  readonly host: string;
  /** Path (`"/session"`, `"/default"`). */
  readonly path: string;
  /** Query parameters. */
  readonly params: ReadonlyMap<string, string>;
}
