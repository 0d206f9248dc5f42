/**
 * Runs the plugin example of docs/writing-a-plugin.md exactly as the guide shows it: its own test file,
 * importing only `virtkit` and `virtkit/testing/vitest`, registers the conformance suite.
 */
await import("../../docs/examples/ram_pool/ram_pool.test.ts");
