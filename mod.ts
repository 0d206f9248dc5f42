// PLACEHOLDER: the registry helper fills this in (public entry).
export * from "./core/units.ts";
export * from "./core/errors.ts";
