/**
 * The image engine's own error: an image whose metadata cannot be trusted.
 *
 * @module
 */
import { VirtError, type VirtErrorOptions } from "../errors.ts";

/**
 * An image file is damaged or lies about itself (truncated tables, offsets past the end, absurd sizes,
 * a backing chain that loops). Its `code` is `"internal"`: nothing a caller did wrong, and retrying
 * does not help; `image` names the file and `detail` says what is wrong.
 *
 * @example
 * ```ts
 * import { CorruptImageError } from "virtkit";
 * const error = new CorruptImageError("disk.qcow2", "L1 table lies past the end of the file");
 * if (error.code !== "internal" || !error.message.includes("disk.qcow2")) throw new Error(error.message);
 * ```
 */
export class CorruptImageError extends VirtError {
  /** The image's name (a path, or a label the caller gave). */
  readonly image: string;
  /** What is wrong with it. */
  readonly detail: string;

  /**
   * Creates the error.
   *
   * @param image The image's name.
   * @param detail What is wrong.
   * @param options Driver and cause.
   */
  constructor(image: string, detail: string, options: VirtErrorOptions = {}) {
    super("internal", `Image "${image}" is corrupt: ${detail}`, options);
    this.name = "CorruptImageError";
    this.image = image;
    this.detail = detail;
  }
}
