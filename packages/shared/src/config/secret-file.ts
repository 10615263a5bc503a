// Secrets named by the config (auth.keyFile, postgres.passwordFile, webhook secretFile, operator
// tokenFile) are read by the daemons when they need them, through this one function, so every
// daemon refuses a missing, empty or exposed secret with the same clear words.
import { readFile, stat } from 'node:fs/promises';
import { PgvipError } from '../errors.js';
import { problem } from './problem.js';

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

/**
 * Reads a secret file and returns its content without the trailing newline an editor or `echo`
 * adds. `field` names the config field that points at the file, e.g. `cluster.auth.keyFile`.
 * Throws PGVIP_CONFIG_UNREADABLE when the file is missing or unreadable, and PGVIP_CONFIG_INVALID
 * when it is empty or readable by group or others (a secret anyone on the host can read is no secret).
 */
export async function readSecretFile(path: string, field: string): Promise<string> {
  let mode: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) {
      throw new PgvipError('PGVIP_CONFIG_UNREADABLE', `${field}: ${path} is not a regular file; point ${field} at the file that holds the secret`);
    }
    mode = info.mode;
  } catch (err) {
    if (err instanceof PgvipError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'does not exist' : `cannot be examined (${code ?? String(err)})`;
    throw new PgvipError('PGVIP_CONFIG_UNREADABLE', `${field}: ${path} ${reason}; create it with mode 0600, owned by the user the daemon runs as`, { cause: err });
  }
  if ((mode & 0o077) !== 0) {
    throw new PgvipError(
      'PGVIP_CONFIG_INVALID',
      `${field}: ${path} is readable or writable by group or others (got mode ${octal(mode)}); run: chmod 600 ${path}`,
    );
  }
  let content: string;
  try {
    content = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new PgvipError('PGVIP_CONFIG_UNREADABLE', `${field}: cannot read ${path} (${code ?? String(err)}); make it readable by the user the daemon runs as (owner of the file, mode 0600)`, { cause: err });
  }
  const secret = content.replace(/\r?\n$/, '');
  if (secret.trim() === '') {
    throw new PgvipError('PGVIP_CONFIG_INVALID', `${field}: ${problem(`${path} holds no secret`, content, 'write the secret into it')}`);
  }
  return secret;
}
