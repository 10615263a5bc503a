// `pgvip check-config FILE`: the config file's own validity, then — unless --no-host-checks — the
// preflight the daemon runs before it starts (secret files, state directory and files), judged for
// the user the daemon runs as. A file it calls valid is one the daemon starts with on this host.
import { execFile } from 'node:child_process';
import { userInfo } from 'node:os';
import { promisify } from 'node:util';
import type { AgentConfig, PgvipError, ServiceUser, WitnessConfig } from '@pgvip/shared';
import { usageError } from './errors.js';

const execFileAsync = promisify(execFile);

/** The users the shipped systemd units run the daemons as (deploy/systemd). */
export const daemonUsers = { agent: 'postgres', witness: 'pgvip' } as const;

async function lookUpUser(name: string): Promise<ServiceUser | undefined> {
  try {
    const { stdout } = await execFileAsync('getent', ['passwd', name], { timeout: 5_000 });
    const fields = stdout.trim().split(':');
    const uid = Number(fields[2]);
    const { stdout: groups } = await execFileAsync('id', ['-G', name], { timeout: 5_000 });
    return { name, uid, gids: groups.trim().split(/\s+/).map(Number) };
  } catch {
    return undefined;
  }
}

function currentUser(): ServiceUser {
  const uid = process.getuid?.() ?? 0;
  let name = `uid ${uid}`;
  try {
    name = userInfo().username;
  } catch {
    // a uid without a passwd entry
  }
  return { name, uid, gids: process.getgroups?.() ?? [] };
}

/**
 * Whom the host checks are made for. As root: the daemon's user (--user, or the one its unit
 * names), so that a file only root can read is reported; as anyone else: oneself (run it as the
 * daemon's user to check for that user). The checks only look: they create nothing.
 */
export async function judgedUser(kind: 'agent' | 'witness', requested: string | undefined): Promise<{ user: ServiceUser; note?: string }> {
  const me = currentUser();
  if (me.uid !== 0) {
    if (requested !== undefined && requested !== me.name) throw usageError(`--user ${requested}: only root can check files for another user; run check-config as root, or as ${requested}`);
    return { user: me };
  }
  const name = requested ?? daemonUsers[kind];
  const user = await lookUpUser(name);
  if (user !== undefined) return { user };
  if (requested !== undefined) throw usageError(`--user ${requested}: no such user on this host`);
  return { user: me, note: `no user ${name} (whom pgvip-${kind}.service runs as) on this host: checked as root` };
}

export interface HostCheck {
  readonly user: ServiceUser;
  readonly note?: string;
  readonly problems: readonly PgvipError[];
}

export async function checkHost(kind: 'agent' | 'witness', config: AgentConfig | WitnessConfig, requestedUser: string | undefined): Promise<HostCheck> {
  const { agentPreflight, witnessPreflight } = await import('@pgvip/shared');
  const { user, note } = await judgedUser(kind, requestedUser);
  const problems = kind === 'agent' ? await agentPreflight(config as AgentConfig, { asUser: user }) : await witnessPreflight(config as WitnessConfig, { asUser: user });
  return { user, problems, ...(note === undefined ? {} : { note }) };
}
