// Configuration of the local PostgreSQL server the agent manages, with the defaults filled in.
import path from 'node:path';
import { PgvipError, shellUnsafePathProblem } from '@pgvip/shared';
import { isValidStandbyName, type PgEndpoint } from './port.js';
import { defaultReseedMethods, type ReseedMethod } from './reseed.js';

export interface PostgresTimeouts {
  /** TCP connect + authentication. A stalled postmaster accepts the TCP connection but never answers. */
  readonly connectMs: number;
  /** One short SQL call (observe, settings, fence), including connecting. */
  readonly queryMs: number;
  /** Waiting for the WAL receiver to stop and replay to catch up before promotion. */
  readonly walReceiverStopMs: number;
  readonly startMs: number;
  readonly stopMs: number;
  readonly rewindMs: number;
  readonly baseBackupMs: number;
  /**
   * A change of synchronous_standby_names until it is in force in every walsender, two CHECKPOINTs
   * included when it leaves '' (sync-setting.ts).
   */
  readonly syncSettingMs: number;
  /** A standby re-pointed at a new primary until its WAL receiver streams from it. */
  readonly followMs: number;
}

export interface LocalPostgresConfig extends PgEndpoint {
  /**
   * This node's name: its application_name when streaming (what synchronous_standby_names names), its
   * heartbeat row.
   */
  readonly nodeName: string;
  readonly dataDir: string;
  /** Directory of pg_ctl, pg_rewind, pg_basebackup. Default /usr/lib/postgresql/15/bin. */
  readonly binDir?: string;
  /** The OS user that owns dataDir and runs the server. Default postgres. */
  readonly osUser?: string;
  /**
   * Server log written by pg_ctl -l. Default: <dataDir>/../postgresql-<basename of dataDir>.log (outside dataDir,
   * so base backups do not copy it).
   */
  readonly logFile?: string;
  /** Extra postgres options for pg_ctl -o, e.g. ['-c', 'config_file=/etc/postgresql/15/main/postgresql.conf']. */
  readonly serverOptions?: readonly string[];
  readonly timeouts?: Partial<PostgresTimeouts>;
  /**
   * max_slot_wal_keep_size in MB, kept on this server by ensureManagedSettings (-1: unbounded);
   * absent: left as the server has it (slot management off).
   */
  readonly maxSlotWalKeepSizeMb?: number;
  /**
   * The physical slot this node keeps for its standby while primary (slot management on): on
   * PostgreSQL 17+ ensureManagedSettings also sets what carries logical failover slots over to the
   * standby (failover-slots.ts). Absent: nothing of the kind.
   */
  readonly peerSlotName?: string;
  /**
   * With three or more nodes: the slots of every standby that may be promoted (not noFailover),
   * which PostgreSQL 17+'s synchronized_standby_slots names instead of the peer's alone.
   */
  readonly standbySlotNames?: readonly string[];
  /**
   * replication.logicalSlots when copy is on: the logical slots the standby keeps copies of (empty:
   * all); before PostgreSQL 17 ensureManagedSettings then sets hot_standby_feedback. Absent: no copies.
   */
  readonly logicalSlotCopy?: { readonly names: readonly string[] };
  /** How to rebuild the data directory when pg_rewind cannot be used, in order (reseed.ts). Default: pg_basebackup. */
  readonly reseedMethods?: readonly ReseedMethod[];
}

export interface ResolvedPostgresConfig
  extends Required<Omit<LocalPostgresConfig, 'password' | 'timeouts' | 'maxSlotWalKeepSizeMb' | 'peerSlotName' | 'standbySlotNames' | 'logicalSlotCopy'>> {
  readonly logicalSlotCopy: { readonly names: readonly string[] } | undefined;
  readonly password: string | undefined;
  readonly maxSlotWalKeepSizeMb: number | undefined;
  readonly peerSlotName: string | undefined;
  readonly standbySlotNames: readonly string[] | undefined;
  readonly timeouts: PostgresTimeouts;
}

export const defaultPostgresTimeouts: PostgresTimeouts = {
  connectMs: 1_000,
  queryMs: 3_000,
  walReceiverStopMs: 10_000,
  startMs: 60_000,
  stopMs: 30_000,
  rewindMs: 10 * 60_000,
  baseBackupMs: 60 * 60_000,
  syncSettingMs: 30_000,
  followMs: 10_000,
};

export function resolvePostgresConfig(config: LocalPostgresConfig): ResolvedPostgresConfig {
  if (!isValidStandbyName(config.nodeName)) {
    throw new PgvipError('PGVIP_CONFIG_INVALID', `postgres nodeName ${JSON.stringify(config.nodeName)} must match [A-Za-z0-9_.-]{1,63}: it is used as application_name`);
  }
  if (!path.isAbsolute(config.dataDir)) {
    throw new PgvipError('PGVIP_CONFIG_INVALID', `postgres dataDir must be an absolute path, got ${JSON.stringify(config.dataDir)}`);
  }
  const dataDir = path.resolve(config.dataDir);
  const binDir = config.binDir ?? '/usr/lib/postgresql/15/bin';
  const logFile = config.logFile ?? path.join(path.dirname(dataDir), `postgresql-${path.basename(dataDir)}.log`);
  // The config schema refuses these already; a LocalPostgres built by other code must not reach pg_ctl either.
  for (const [name, value] of [['dataDir', dataDir], ['binDir', binDir], ['logFile', logFile]] as const) {
    const problem = shellUnsafePathProblem(value);
    if (problem !== undefined) throw new PgvipError('PGVIP_CONFIG_INVALID', `postgres ${name} ${JSON.stringify(value)} ${problem}`);
  }
  return {
    nodeName: config.nodeName,
    host: config.host,
    port: config.port,
    user: config.user,
    database: config.database,
    password: config.password,
    dataDir,
    binDir,
    osUser: config.osUser ?? 'postgres',
    logFile,
    serverOptions: config.serverOptions ?? [],
    timeouts: { ...defaultPostgresTimeouts, ...config.timeouts },
    maxSlotWalKeepSizeMb: config.maxSlotWalKeepSizeMb,
    peerSlotName: config.peerSlotName,
    standbySlotNames: config.standbySlotNames,
    logicalSlotCopy: config.logicalSlotCopy,
    reseedMethods: config.reseedMethods ?? defaultReseedMethods,
  };
}
