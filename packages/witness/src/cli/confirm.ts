// Asking a person before a command that changes the cluster. Only on a terminal: a script that
// pipes "y" into pgvip has not read the question, so it must say --yes instead.
import { createInterface } from 'node:readline/promises';
import { CliError, exitCodes, usageError } from './errors.js';

export async function confirm(question: string, what: string): Promise<void> {
  if (process.stdin.isTTY !== true) {
    throw usageError(`${what} needs a confirmation, and stdin is not a terminal: pass --yes to confirm non-interactively`);
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(`${question} [y/N] `)).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') throw new CliError(exitCodes.failed, `${what} cancelled; nothing was changed`, 'cancelled');
  } finally {
    rl.close();
  }
}
