/**
 * The one file interface the image engine needs: positional reads and writes on an open file. The `dir`
 * backend implements it over `node:fs` file handles; tests use {@linkcode createMemoryFile}.
 *
 * @module
 */

/** An open file addressed by byte offsets. Calls may overlap; each one is complete when its promise resolves. */
export interface PositionalFile {
  /**
   * Reads up to `target.byteLength` bytes at `offset`.
   *
   * @param offset Byte offset in the file.
   * @param target Where the bytes go.
   * @returns How many bytes were read: fewer than asked only at the end of the file (0 at or past it).
   */
  read(offset: number, target: Uint8Array): Promise<number>;
  /**
   * Writes all of `data` at `offset`, growing the file when it ends past the end.
   *
   * @param offset Byte offset in the file.
   * @param data The bytes; the caller may reuse the buffer once the promise resolves.
   */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** The file's size in bytes. */
  size(): Promise<number>;
  /**
   * Sets the file's size; growing leaves a hole that reads as zeros.
   *
   * @param sizeBytes The new size.
   */
  truncate(sizeBytes: number): Promise<void>;
  /** Makes every write that resolved so far durable (`fsync`): the engine's ordering barrier. */
  flush(): Promise<void>;
  /** Closes the file; further calls fail. */
  close(): Promise<void>;
}
