// Turning a stopped former primary (or a broken standby) into a standby of the new primary.
//
// pg_rewind first: it copies only the blocks that changed since the timelines forked, so it takes
// seconds. When it cannot work (the target's WAL since the fork is gone, the data directory is
// damaged, the timelines are unrelated) the data directory is re-seeded (reseed.ts): by the
// configured methods in order, by default a fresh pg_basebackup.
//
// What a re-seed loses is the diverged tail the old primary wrote after it lost its term; the
// cluster never acknowledged it under the new term. An operator who wants to inspect it first
// configures no re-seed method (rejoin.reseed.methods: []). An interrupted re-seed leaves a broken
// directory that the next rejoin replaces again.
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { PgvipError } from '@pgvip/shared';
import { updateAutoConfFile, writeFileAtomically } from './auto-conf.js';
import type { ResolvedPostgresConfig } from './config.js';
import { outputTail, runAsOsUser, type CommandResult, type OsUser } from './os-command.js';
import type { PgEndpoint } from './port.js';
import { quoteConninfoValue, replicationTransport } from './replication-transport.js';

export interface RejoinContext {
  readonly config: ResolvedPostgresConfig;
  readonly osUser: OsUser;
}

/**
 * A libpq keyword/value connection string. The password is left out unless asked for: command lines
 * are visible in ps, so tools get it through PGPASSWORD instead; only primary_conninfo stores it
 * (as pg_basebackup -R would). `streaming`: a WAL receiver's (primary_conninfo), with the transport
 * settings of replication-transport.ts.
 */
export function conninfoFor(
  endpoint: PgEndpoint,
  extra: { applicationName?: string; includePassword?: boolean; streaming?: boolean } = {},
): string {
  const pairs: Array<[string, string]> = [
    ['host', endpoint.host],
    ['port', String(endpoint.port)],
    ['user', endpoint.user],
    ['dbname', endpoint.database],
  ];
  if (extra.includePassword && endpoint.password !== undefined) pairs.push(['password', endpoint.password]);
  if (extra.applicationName !== undefined) pairs.push(['application_name', extra.applicationName]);
  if (extra.streaming === true) pairs.push(...replicationTransport.map(([k, v]): [string, string] => [k, v]));
  return pairs.map(([k, v]) => `${k}=${quoteConninfoValue(v)}`).join(' ');
}

export function toolEnv(ctx: RejoinContext, primary: PgEndpoint): Record<string, string> {
  const connectSeconds = Math.max(2, Math.ceil(ctx.config.timeouts.connectMs / 1000));
  const env: Record<string, string> = { PGCONNECT_TIMEOUT: String(connectSeconds) };
  if (primary.password !== undefined) env.PGPASSWORD = primary.password;
  return env;
}

function toolRun(
  ctx: RejoinContext,
  tool: string,
  args: readonly string[],
  primary: PgEndpoint,
  timeoutMs: number,
): Promise<CommandResult> {
  return runAsOsUser(ctx.osUser, path.join(ctx.config.binDir, tool), args, {
    timeoutMs,
    cwd: path.dirname(ctx.config.dataDir),
    env: toolEnv(ctx, primary),
  });
}

/** Runs pg_rewind against `primary`; returns null on success, else why it failed. */
export async function rewindFrom(ctx: RejoinContext, primary: PgEndpoint): Promise<string | null> {
  const result = await toolRun(
    ctx,
    'pg_rewind',
    ['--target-pgdata', ctx.config.dataDir, '--source-server', conninfoFor(primary)],
    primary,
    ctx.config.timeouts.rewindMs,
  );
  if (result.exitCode === 0) return null;
  return result.timedOut ? `pg_rewind timed out after ${ctx.config.timeouts.rewindMs} ms` : `pg_rewind exit ${result.exitCode ?? result.signal}: ${outputTail(result)}`;
}

/** Empties the data directory, keeping the directory itself (a mount point, its owner and mode). */
export async function emptyDataDir(dataDir: string): Promise<void> {
  for (const entry of await readdir(dataDir)) {
    await rm(path.join(dataDir, entry), { recursive: true, force: true });
  }
}

/** Empties the data directory and fills it with a fresh base backup of `primary`. */
export async function replaceWithBaseBackup(ctx: RejoinContext, primary: PgEndpoint): Promise<void> {
  const { dataDir } = ctx.config;
  await emptyDataDir(dataDir);
  const result = await toolRun(
    ctx,
    'pg_basebackup',
    ['--pgdata', dataDir, '--dbname', conninfoFor(primary), '--wal-method', 'stream', '--checkpoint', 'fast', '--no-password'],
    primary,
    ctx.config.timeouts.baseBackupMs,
  );
  if (result.exitCode !== 0) {
    const why = result.timedOut ? `timed out after ${ctx.config.timeouts.baseBackupMs} ms` : `exit ${result.exitCode ?? result.signal}: ${outputTail(result)}`;
    throw new PgvipError('PGVIP_PG_BASE_BACKUP_FAILED', `pg_basebackup of ${primary.host}:${primary.port} into ${dataDir}: ${why}`);
  }
}

/**
 * Makes the stopped server start as a standby of `primary`: standby.signal, primary_conninfo naming
 * this node (so synchronous_standby_names can name it), primary_slot_name (its slot, or none), and
 * no read-only fence (recovery makes a standby read-only anyway, and a leftover fence would make it
 * read-only after a later promotion).
 */
export async function configureAsStandby(
  ctx: RejoinContext,
  primary: PgEndpoint,
  slotName: string | null = null,
): Promise<void> {
  const { config, osUser } = ctx;
  await updateAutoConfFile(config.dataDir, osUser, {
    primary_conninfo: conninfoFor(primary, {
      applicationName: config.nodeName,
      includePassword: true,
      streaming: true,
    }),
    // The copy from the primary may carry another node's slot name (or none): this node's own, or none.
    primary_slot_name: slotName,
    default_transaction_read_only: null,
  });
  await writeFileAtomically(path.join(config.dataDir, 'standby.signal'), '', osUser);
}
