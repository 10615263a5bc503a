// postgresql.parameters: cluster-wide PostgreSQL settings the agents apply on both nodes with ALTER
// SYSTEM (so a standby has them when it is promoted). Names travel unquoted into ALTER SYSTEM, so they
// are held to PostgreSQL's identifier shape; values travel as SQL literals, and a control character
// (a newline above all: PostgreSQL 15 writes values into postgresql.auto.conf as they are) is refused.
// The settings pgvip manages itself are refused with the field that owns them, so one setting never
// has two writers.
import { z } from 'zod';
import { addComposedIssue, problem } from './problem.js';

/** A parameter name: a setting, or an extension's `prefix.setting`; lower case, as pg_settings lists them. */
const namePattern = /^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$/;
const MAX_VALUE_CHARS = 1024;
const MAX_PARAMETERS = 200;

const byPgvip = 'pgvip sets it on both nodes itself (packages/agent/src/postgres/managed-settings.ts)';

/**
 * The settings pgvip manages, each with why and what to do instead: postgresql.parameters may not
 * name them. The agent's own managed settings are checked against this list by a test.
 */
export const pgvipManagedParameters: Readonly<Record<string, string>> = {
  wal_retrieve_retry_interval: byPgvip,
  wal_receiver_status_interval: byPgvip,
  hot_standby: byPgvip,
  recovery_target_timeline: byPgvip,
  full_page_writes: byPgvip,
  wal_log_hints: byPgvip,
  synchronous_standby_names: 'the primary names its standby there as replication.mode says (and clears it to degrade with the witness\'s agreement); set replication.mode instead',
  default_transaction_read_only: 'the agent sets it to fence a primary; remove it',
  primary_conninfo: 'the agent points a standby at its primary; remove it',
  primary_slot_name: 'the agent names the standby\'s slot when replication.slots.enabled; remove it',
  max_slot_wal_keep_size: 'set replication.slots.maxWalKeepSizeMb instead',
  sync_replication_slots: 'the agents set it on PostgreSQL 17+ when replication.slots.enabled; remove it',
  synchronized_standby_slots: 'the agents set it on PostgreSQL 17+ when replication.slots.enabled; remove it',
  hot_standby_feedback: 'the agents set it for logical slot copies and failover slots; remove it',
  port: 'set nodes[].postgres.port instead (the agents and the witness connect there)',
  data_directory: 'set nodes[].postgres.dataDir instead',
  hba_file: 'the read-only fence writes a block into the hba_file the server reports; change it in postgresql.conf by hand if you must',
  config_file: 'it cannot be changed with ALTER SYSTEM',
  restore_command: 'the re-seed command writes it when it restores a standby (rejoin.reseed); keep it in postgresql.conf if you archive',
};

const valueSchema = z.union([z.string(), z.number(), z.boolean()], {
  error: 'must be a string, a number or true/false, e.g. \'256MB\'',
});

/** Checks and normalises (to strings, as ALTER SYSTEM takes them) the parameters mapping. */
export const postgresParametersSchema = z
  .record(z.string(), valueSchema, { error: 'must be a mapping of PostgreSQL parameter names to values, e.g. { work_mem: 64MB }' })
  .superRefine((params, ctx) => {
    const names = Object.keys(params);
    if (names.length > MAX_PARAMETERS) {
      addComposedIssue(ctx, [], problem(`holds ${names.length} parameters, more than ${MAX_PARAMETERS}`, names.length, 'keep the rest in postgresql.conf'));
    }
    for (const [name, raw] of Object.entries(params)) {
      if (!namePattern.test(name)) {
        addComposedIssue(ctx, [name], problem('is not a PostgreSQL parameter name', name, 'use the lower-case name pg_settings lists, e.g. work_mem or pg_stat_statements.max'));
        continue;
      }
      const managed = pgvipManagedParameters[name];
      if (managed !== undefined) {
        addComposedIssue(ctx, [name], problem('is managed by pgvip', name, `remove it from postgresql.parameters: ${managed}`));
        continue;
      }
      const value = String(raw);
      // eslint-disable-next-line no-control-regex -- control characters are what must be refused
      if (/[\u0000-\u001f\u007f]/.test(value)) {
        addComposedIssue(ctx, [name], problem('holds a control character (a newline?)', value, 'give the value on one line, without control characters'));
      } else if (value.length > MAX_VALUE_CHARS) {
        addComposedIssue(ctx, [name], problem(`is longer than ${MAX_VALUE_CHARS} characters`, `${value.slice(0, 40)}…`, 'keep such values in postgresql.conf'));
      }
    }
  })
  .transform((params): Readonly<Record<string, string>> =>
    Object.fromEntries(Object.entries(params).map(([name, value]) => [name, String(value)])));
