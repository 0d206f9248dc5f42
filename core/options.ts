/**
 * Option shapes shared by every async method.
 *
 * @module
 */

/** Every async method takes these last. */
export interface SignalOptions {
  /** Aborting rejects the call with the signal's own reason. */
  signal?: AbortSignal;
}
