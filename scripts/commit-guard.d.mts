// Types for commit-guard.mjs, so TypeScript tests and the lab can check and build the extension.
export const commitGuardSourceDir: string;
export const pgConfig: string;
export const pgServerHeader: string;
export const commitGuardInstalledFiles: readonly string[];
export function commitGuardUpToDate(): boolean;
export function ensureCommitGuard(): void;
