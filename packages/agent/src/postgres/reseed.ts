// Re-seeding: rebuilding this node's data directory from scratch when pg_rewind cannot be used,
// through the methods configured in rejoin.reseed.methods, in order (like Patroni's
// create_replica_methods). A restore command (pgBackRest, WAL-G) spares the primary the copy;
// pg_basebackup needs nothing but the primary. A failed method is logged with its reason and the
// next one runs on an emptied directory again.
//
// The directory is emptied in place rather than filled beside and swapped: a data directory is often
// a mount point (EBS volume), which cannot be renamed, and its sibling may be on a smaller disk.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PgvipError, type AgentRejoinConfig, type ReseedPlaceholder } from '@pgvip/shared';
import { outputTail, runAsOsUser } from './os-command.js';
import type { PgEndpoint } from './port.js';
import { conninfoFor, emptyDataDir, replaceWithBaseBackup, toolEnv, type RejoinContext } from './rejoin.js';
import { describeError } from './server-queries.js';

/** One way to re-seed (LocalPostgresConfig.reseedMethods). */
export type ReseedMethod =
  | { readonly kind: 'basebackup' }
  | {
      readonly kind: 'command';
      /** Absolute path of the program; run without a shell, as the data directory's OS user. */
      readonly path: string;
      /** Its arguments; {placeholder}s (rejoin-schema.ts in @pgvip/shared) are replaced. */
      readonly args: readonly string[];
      readonly timeoutMs: number;
    };

export const defaultReseedMethods: readonly ReseedMethod[] = [{ kind: 'basebackup' }];

/** The methods of the agent file's rejoin.reseed block (the schema makes sure a listed command is configured). */
export function reseedMethodsOf(rejoin: AgentRejoinConfig): ReseedMethod[] {
  const { methods, command } = rejoin.reseed;
  return methods.flatMap((kind): ReseedMethod[] => {
    if (kind === 'basebackup') return [{ kind }];
    if (command === undefined) return [];
    return [{ kind, path: command.path, args: command.args, timeoutMs: command.timeoutMs }];
  });
}

/** What a re-seed did: the method that succeeded and why each earlier one did not. */
export interface ReseedOutcome {
  readonly method: ReseedMethod['kind'];
  readonly failures: readonly string[];
}

/** The values of the placeholders for a re-seed from `primary`. */
export function placeholderValues(ctx: RejoinContext, primary: PgEndpoint): Record<ReseedPlaceholder, string> {
  return {
    dataDir: ctx.config.dataDir,
    binDir: ctx.config.binDir,
    nodeName: ctx.config.nodeName,
    primaryHost: primary.host,
    primaryPort: String(primary.port),
    primaryUser: primary.user,
    primaryDatabase: primary.database,
    primaryConninfo: conninfoFor(primary),
  };
}

/** `arg` with each {placeholder} replaced; names that are no placeholder stay as they are (the config refuses them). */
export function expandPlaceholders(arg: string, values: Readonly<Record<string, string>>): string {
  return arg.replace(/\{([A-Za-z]+)\}/g, (whole, name: string) => values[name] ?? whole);
}

/**
 * Runs the methods in order until one leaves a data directory; returns which one and the earlier
 * failures. When all fail it throws the last one's error (PGVIP_PG_BASE_BACKUP_FAILED or
 * PGVIP_PG_RESEED_COMMAND_FAILED) with every reason in its detail; with no methods,
 * PGVIP_PG_REWIND_FAILED with `rewindFailure`.
 */
export async function reseedFrom(
  ctx: RejoinContext,
  primary: PgEndpoint,
  methods: readonly ReseedMethod[],
  rewindFailure: string,
  onFailure: (method: ReseedMethod, why: string) => void = () => undefined,
): Promise<ReseedOutcome> {
  if (methods.length === 0) throw new PgvipError('PGVIP_PG_REWIND_FAILED', `${rewindFailure}; no re-seed method is configured`);
  const failures: string[] = [];
  for (const [i, method] of methods.entries()) {
    try {
      if (method.kind === 'basebackup') await replaceWithBaseBackup(ctx, primary);
      else await restoreWithCommand(ctx, primary, method);
      return { method: method.kind, failures };
    } catch (err) {
      const why = describeError(err);
      failures.push(`${method.kind}: ${why}`);
      onFailure(method, why);
      if (i === methods.length - 1) {
        const code = method.kind === 'basebackup' ? 'PGVIP_PG_BASE_BACKUP_FAILED' : 'PGVIP_PG_RESEED_COMMAND_FAILED';
        throw new PgvipError(code, `every re-seed method failed (${failures.join('; ')})`, { cause: err });
      }
    }
  }
  throw new PgvipError('PGVIP_INTERNAL', 'unreachable: the loop returns or throws');
}

async function restoreWithCommand(
  ctx: RejoinContext,
  primary: PgEndpoint,
  method: Extract<ReseedMethod, { kind: 'command' }>,
): Promise<void> {
  const { dataDir } = ctx.config;
  await emptyDataDir(dataDir);
  const values = placeholderValues(ctx, primary);
  const result = await runAsOsUser(ctx.osUser, method.path, method.args.map((a) => expandPlaceholders(a, values)), {
    timeoutMs: method.timeoutMs,
    cwd: path.dirname(dataDir),
    env: {
      ...toolEnv(ctx, primary),
      PGVIP_DATA_DIR: dataDir,
      PGVIP_NODE_NAME: ctx.config.nodeName,
      PGVIP_PRIMARY_HOST: primary.host,
      PGVIP_PRIMARY_PORT: String(primary.port),
      PGVIP_PRIMARY_CONNINFO: values.primaryConninfo,
    },
    // The operator's program runs without the agent's CAP_NET_ADMIN, or not at all.
    dropCapabilities: 'required',
  });
  if (result.exitCode !== 0) {
    const exit = result.exitCode ?? result.signal;
    const why = result.timedOut ? `timed out after ${method.timeoutMs} ms` : exit === null ? 'did not run' : `exit ${exit}`;
    throw new PgvipError('PGVIP_PG_RESEED_COMMAND_FAILED', `${method.path} ${why}: ${outputTail(result)}`);
  }
  // Exit 0 is not enough: a wrapper that forgot to fail would leave the node without a database.
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    throw new PgvipError('PGVIP_PG_RESEED_COMMAND_FAILED', `${method.path} exited 0 but left no PG_VERSION in ${dataDir}`);
  }
}
