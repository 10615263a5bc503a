// How the pgvip CLI ends: every failure is a CliError carrying the exit code a script can act on
// and one message a person can act on. main.ts prints it; nothing else may exit the process, and
// no stack trace ever reaches the terminal.

/** Exit codes; documented in docs/cli.md, never renumbered. */
export const exitCodes = {
  ok: 0,
  /** A check failed (doctor), or the witness or the operator refused or failed the request. */
  failed: 1,
  /** The command line or a config file is wrong; nothing was done. */
  usage: 2,
  /** The witness could not be reached, or did not answer like a pgvip witness. */
  unreachable: 3,
  /** The witness rejected the token (or none was given when one is required). */
  auth: 4,
} as const;

export type ExitCode = (typeof exitCodes)[keyof typeof exitCodes];

/** Short names for the JSON form of an error (`{"error": {"code": ...}}`). */
const codeOfExit: Record<ExitCode, string> = { 0: 'ok', 1: 'refused', 2: 'usage', 3: 'unreachable', 4: 'auth' };

export class CliError extends Error {
  readonly exitCode: ExitCode;
  /** The witness's error code (e.g. PGVIP_STALE_TERM) when it sent one, else a name for the exit code. */
  readonly code: string;

  constructor(exitCode: ExitCode, message: string, code?: string) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.code = code ?? codeOfExit[exitCode];
  }
}

export const usageError = (message: string) => new CliError(exitCodes.usage, message);
