// `pgvip doctor`'s PostgreSQL check: is the commit guard (pgvip_commit_guard, the extension that
// refuses write commits after the agent's lease) loaded and active on this node's server? Asked with
// the node's own psql (the CLI has no PostgreSQL driver, and psql is on every database node).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { readSecretFile, type AgentConfig } from '@pgvip/shared';
import type { Check } from './doctor.js';

const title = 'PostgreSQL commit guard';
const deployDoc = 'docs/deploy.md, "The commit guard"';

export interface Psql {
  readonly ok: boolean;
  readonly out: string;
}

function psql(binDir: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Psql> {
  return new Promise((resolve) => {
    let out = '';
    let child;
    try {
      child = spawn(path.join(binDir, 'psql'), ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      resolve({ ok: false, out: (err as Error).message });
      return;
    }
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, out: err.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ ok: code === 0, out: out.trim() });
    });
  });
}

/** Asks this node's PostgreSQL one statement with psql; fields of a row are separated by '|'. */
export type Ask = (sql: string) => Promise<Psql>;

/** An Ask for this node's server, or why none can be made (its password file cannot be read). */
export async function psqlAsk(config: AgentConfig, timeoutMs: number): Promise<Ask | string> {
  const node = config.cluster.nodes.find((n) => n.id === config.self)!;
  const pg = node.postgres;
  const connectSeconds = Math.max(2, Math.ceil(timeoutMs / 1000));
  const env: NodeJS.ProcessEnv = { ...process.env, PGCONNECT_TIMEOUT: String(connectSeconds), LC_MESSAGES: 'C' };
  if (pg.passwordFile !== undefined) {
    try {
      env.PGPASSWORD = await readSecretFile(pg.passwordFile, `nodes[${node.id}].postgres.passwordFile`);
    } catch (err) {
      return (err as Error).message;
    }
  }
  const conn = ['-h', pg.host, '-p', String(pg.port), '-U', pg.user, '-d', pg.database];
  return (sql: string) => psql(pg.binDir, [...conn, '-F', '|', '-c', sql], env, timeoutMs + 1_000);
}

export async function commitGuardCheck(config: AgentConfig, timeoutMs: number): Promise<Check> {
  const pg = config.cluster.nodes.find((n) => n.id === config.self)!.postgres;
  if (config.cluster.fencing.commitGuard === 'off') {
    return { status: 'note', title, detail: 'fencing.commitGuard is off: the agent does not arm it, so a primary frozen past its lease may commit writes for a moment after it runs again' };
  }
  const ask = await psqlAsk(config, timeoutMs);
  if (typeof ask === 'string') return { status: 'note', title, detail: `could not check: ${ask}` };
  const basic = await ask(
    "SELECT coalesce((SELECT setting FROM pg_settings WHERE name = 'pgvip_commit_guard.enabled'), 'absent'), " +
      "EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgvip_commit_guard'), pg_is_in_recovery()",
  );
  if (!basic.ok) {
    return { status: 'note', title, detail: `could not ask PostgreSQL at ${pg.host}:${pg.port}: ${basic.out.split('\n')[0] ?? ''}`, fix: 'run doctor where the agent runs, with PostgreSQL up, to check the commit guard' };
  }
  const [setting, created, recovery] = basic.out.split('|');
  if (setting === 'absent') {
    return {
      status: 'fail',
      title,
      detail: 'not loaded: pgvip_commit_guard is not in shared_preload_libraries, so a primary frozen past its lease can commit writes after it runs again, before its agent fences it',
      fix: `install the extension and add pgvip_commit_guard to shared_preload_libraries, then restart PostgreSQL (${deployDoc}); or set fencing.commitGuard: off to accept that window`,
    };
  }
  if (setting !== 'on') {
    return { status: 'fail', title, detail: 'loaded but switched off (pgvip_commit_guard.enabled = off)', fix: 'ALTER SYSTEM RESET pgvip_commit_guard.enabled; SELECT pg_reload_conf();' };
  }
  if (created !== 't') {
    return { status: 'ok', title, detail: 'loaded; the agent creates its functions (CREATE EXTENSION) on the primary and arms it at its first lease' };
  }
  const status = await ask('SELECT armed, active, round(remaining_ms) FROM pgvip_guard_status()');
  if (!status.ok) return { status: 'note', title, detail: `loaded, but its status could not be read: ${status.out.split('\n')[0] ?? ''}` };
  const [armed, active, remaining] = status.out.split('|');
  if (recovery === 't') return { status: 'ok', title, detail: 'loaded; ignored while this server is a standby (the agent arms it with its lease before a promotion)' };
  if (armed !== 't') return { status: 'ok', title, detail: 'loaded, not armed yet: no guard until the agent holds a lease (term 0, or PostgreSQL restarted since)' };
  const ms = Number(remaining);
  return active === 't' && ms > 0
    ? { status: 'ok', title, detail: `active: this primary commits writes for ${ms} ms more unless the agent renews its lease` }
    : { status: 'ok', title, detail: `active, deadline passed ${-ms} ms ago: this server refuses every write commit until its agent holds a lease again` };
}
