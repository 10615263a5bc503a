// Secrets named by the config (auth.keyFile, postgres.passwordFile, webhook secretFile, operator
// tokenFile) and the CLI's --token-file are read through this one function, by the daemons when
// they need them and by `pgvip check-config`, so every program refuses a missing, empty or exposed
// secret with the same clear words and reads the same secret from the same bytes.
import { readFile, stat } from 'node:fs/promises';
import { PgvipError } from '../errors.js';
import { problem } from './problem.js';

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

/**
 * The secret a file's text holds: the text without surrounding white space. Editors, `echo`,
 * Windows tools and config management add newlines (one, two, CRLF) or spaces; a secret that
 * differed by them between two readers would work in one program and not in another.
 */
export function secretOfText(text: string): string {
  return text.trim();
}

/**
 * Reads a secret file and returns its content without surrounding white space (secretOfText).
 * `field` names the config field that points at the file, e.g. `cluster.auth.keyFile`.
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
  const secret = secretOfText(content);
  if (secret === '') {
    throw new PgvipError('PGVIP_CONFIG_INVALID', `${field}: ${problem(`${path} holds no secret`, content, 'write the secret into it')}`);
  }
  return secret;
}
