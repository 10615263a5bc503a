// Types for system-deps.mjs, so TypeScript entry points (the lab demo and bench) can call the bootstrap.
export function ensureSystemDeps(files: readonly string[]): void;
