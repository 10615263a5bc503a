// The connection half of the read-only fence: a marked block at the top of pg_hba.conf that refuses
// every login role except the agent's own.
//
// default_transaction_read_only is only a default: any session may SET it off, BEGIN READ WRITE or
// SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE (JDBC's setReadOnly(false) sends the last
// one). So while fenced, clients must not have a session at all. pg_hba.conf is read first match
// first, and PostgreSQL 15 has no "every role but this one", so the block names the roles it
// refuses: every role that can log in, except the agent's. What it leaves alone falls through to the
// operator's own rules, unchanged: the agent's role (a superuser: whoever holds it could lift any
// fence anyway) and replication connections (the keyword `all` never matches a replication
// connection), so the standbys keep streaming. A role created while fenced could only be created
// by the agent's role, the only one left with a session.
//
// The file is replaced atomically (temp file, fsync, rename, keeping its mode and owner), so a
// crash leaves either the old or the new file; the block stays until unfence or rejoin removes it,
// so a server restarted by anyone comes back refusing clients.
import { readFile, stat } from 'node:fs/promises';
import { PgvipError } from '@pgvip/shared';
import { writeFileAtomically } from './auto-conf.js';

export const hbaFenceBegin = '# BEGIN pgvip fence';
export const hbaFenceEnd = '# END pgvip fence';

/** Roles per pair of lines: keeps each line short and readable. */
const rolesPerLine = 50;

/**
 * A role name as a quoted pg_hba.conf token (quoting also keeps keywords such as all and prefixes
 * such as + literal), or null when the file cannot express it: a token has no escape for a double
 * quote, and a line break ends the line.
 */
export function hbaRoleToken(role: string): string | null {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what must be refused
  if (role === '' || /["\u0000-\u001f\u007f]/.test(role)) return null;
  return `"${role}"`;
}

/** The block refusing `roles` on every non-replication connection (local socket and TCP, any address, SSL or not). */
export function hbaFenceBlock(roles: readonly string[]): string {
  const tokens = roles.map(hbaRoleToken).filter((t): t is string => t !== null);
  const lines = [
    `${hbaFenceBegin}: this node is fenced (it must not accept writes). Written by the pgvip agent, which`,
    '# removes it on unfence. Every login role but the agent\'s is refused; replication is not affected.',
  ];
  for (let i = 0; i < tokens.length; i += rolesPerLine) {
    const users = tokens.slice(i, i + rolesPerLine).join(',');
    lines.push(`local all ${users} reject`, `host all ${users} all reject`);
  }
  lines.push(hbaFenceEnd);
  return `${lines.join('\n')}\n`;
}

/**
 * Where the block is in `text` (line indexes, end inclusive), or null. A begin without an end is refused:
 * it was not written by us.
 */
function findBlock(text: string, file: string): { begin: number; end: number } | null {
  const lines = text.split('\n');
  const begin = lines.findIndex((l) => l.startsWith(hbaFenceBegin));
  if (begin < 0) return null;
  const end = lines.findIndex((l, i) => i > begin && l.startsWith(hbaFenceEnd));
  if (end < 0) {
    throw new PgvipError('PGVIP_PG_FENCE_FAILED', `${file} has a "${hbaFenceBegin}" line without "${hbaFenceEnd}": remove the damaged block by hand`);
  }
  return { begin, end };
}

export function hasHbaFence(text: string, file = 'pg_hba.conf'): boolean {
  return findBlock(text, file) !== null;
}

/** `text` with the fence block replaced by `block` (at the top), or removed when `block` is null. */
export function withHbaFence(text: string, block: string | null, file = 'pg_hba.conf'): string {
  const found = findBlock(text, file);
  let rest = text;
  if (found !== null) {
    const lines = text.split('\n');
    lines.splice(found.begin, found.end - found.begin + 1);
    rest = lines.join('\n');
  }
  return block === null ? rest : block + rest;
}

/**
 * Puts the block refusing `roles` at the top of `file` (roles null: removes it). Returns whether the
 * file changed; an unchanged file is not rewritten. The server sees it at its next reload.
 */
export async function setHbaFence(file: string, roles: readonly string[] | null): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new PgvipError('PGVIP_PG_FENCE_FAILED', `cannot read ${file} (the server's hba_file): ${(err as Error).message}`, { cause: err });
  }
  const updated = withHbaFence(text, roles === null ? null : hbaFenceBlock(roles), file);
  if (updated === text) return false;
  try {
    await replaceKeepingOwner(file, updated);
  } catch (err) {
    throw new PgvipError(
      'PGVIP_PG_FENCE_FAILED',
      `cannot rewrite ${file} (the server's hba_file): ${(err as Error).message}; the agent's OS user must be able to write the file and its directory`,
      { cause: err },
    );
  }
  return true;
}

/** Whether `file` holds the fence block; false when it cannot be read. */
export async function hbaFenceInstalled(file: string): Promise<boolean> {
  try {
    return hasHbaFence(await readFile(file, 'utf8'), file);
  } catch {
    return false;
  }
}

/** Replaced atomically, keeping the file's mode and (when running as root) its owner. */
async function replaceKeepingOwner(file: string, content: string): Promise<void> {
  const before = await stat(file);
  await writeFileAtomically(file, content, { uid: before.uid, gid: before.gid }, before.mode & 0o7777);
}
