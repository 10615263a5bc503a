// The `rejoin` block of the agent file: how this node rebuilds its data directory when pg_rewind
// cannot be used (like Patroni's create_replica_methods). Node-local, so it lives in the agent file:
// each node may restore from its own backup tool and repository.
import { z } from 'zod';
import { absolutePath, closedObject, durationMs, listOf } from './fields.js';
import { addComposedIssue, problem } from './problem.js';

/** What a re-seed command's arguments may name as {name}; each is replaced as a whole word or inside a word. */
export const reseedPlaceholders = {
  dataDir: 'this node\'s data directory (emptied before the command runs; the directory itself stays)',
  binDir: 'the directory of PostgreSQL\'s programs (postgres.binDir)',
  nodeName: 'this node\'s application_name',
  primaryHost: 'the primary\'s PostgreSQL host',
  primaryPort: 'the primary\'s PostgreSQL port',
  primaryUser: 'the role the agents connect as',
  primaryDatabase: 'the database the agents connect to',
  primaryConninfo: 'a libpq connection string for the primary, without the password (that is in PGPASSWORD)',
} as const;

export type ReseedPlaceholder = keyof typeof reseedPlaceholders;

const placeholderPattern = /\{([A-Za-z]+)\}/g;

/** The {name}s in `arg` that are no placeholder. */
export function unknownPlaceholders(arg: string): string[] {
  return [...arg.matchAll(placeholderPattern)].map((m) => m[1] ?? '').filter((name) => !(name in reseedPlaceholders));
}

const reseedMethods = ['command', 'basebackup'] as const;

const placeholderList = Object.keys(reseedPlaceholders).map((name) => `{${name}}`).join(', ');

const ReseedCommandSchema = closedObject({
  path: absolutePath('/usr/local/bin/pgvip-restore')
    .describe('Program that fills the empty data directory, e.g. a wrapper around pgbackrest restore or wal-g backup-fetch (absolute path; it must exist and be executable when the agent starts). It runs as postgres.osUser, with no shell, in its own process group. Exit 0 with a data directory (PG_VERSION) left behind is success; the agent then writes primary_conninfo, primary_slot_name and standby.signal itself.'),
  args: listOf(z.string({ error: 'must be a string' }), 'strings')
    .default([])
    .describe(`Arguments passed as they are (no shell: \`;\` or \`$(...)\` are plain text), with these placeholders replaced: ${placeholderList}. The environment also has PGPASSWORD, PGCONNECT_TIMEOUT, PGVIP_DATA_DIR, PGVIP_NODE_NAME, PGVIP_PRIMARY_HOST, PGVIP_PRIMARY_PORT and PGVIP_PRIMARY_CONNINFO.`),
  timeoutMs: durationMs(1_000, 24 * 3_600_000)
    .default(3_600_000)
    .describe('The command (and every process it started) is killed when it runs longer than this; the next method then runs.'),
})
  .superRefine((command, ctx) => {
    command.args.forEach((arg, i) => {
      const unknown = unknownPlaceholders(arg);
      if (unknown.length > 0) {
        addComposedIssue(ctx, ['args', i], problem(`names no placeholder: {${unknown.join('}, {')}}`, arg, `use one of ${placeholderList}`));
      }
    });
  })
  .optional()
  .describe('The `command` re-seed method (docs/runbook.md, "Re-seeding a standby").');

export const RejoinSchema = closedObject({
  reseed: closedObject({
    methods: listOf(z.enum(reseedMethods, { error: `must be one of ${reseedMethods.join(', ')}` }), 'methods, e.g. [command, basebackup]')
      .default(['basebackup'])
      .describe('Ways to rebuild this node\'s data directory when pg_rewind cannot be used (the WAL since the fork is gone, the slot was invalidated, the directory is damaged), tried in order until one succeeds; a failed one is logged with its reason and the next runs, on an emptied directory again. "command": run reseed.command (a restore from backups, which spares the primary); "basebackup": pg_basebackup from the primary. [] disables re-seeding: a rejoin that pg_rewind cannot do fails (PGVIP_PG_REWIND_FAILED) and leaves the directory for inspection.'),
    command: ReseedCommandSchema,
  })
    .superRefine((reseed, ctx) => {
      const seen = new Set<string>();
      reseed.methods.forEach((method, i) => {
        if (seen.has(method)) addComposedIssue(ctx, ['methods', i], problem('is listed twice', method, 'list each method once'));
        seen.add(method);
      });
      if (reseed.methods.includes('command') && reseed.command === undefined) {
        addComposedIssue(ctx, ['command'], problem('is required when methods lists "command"', undefined, 'set command.path (and args), or remove "command" from methods'));
      }
    })
    .prefault({})
    .describe('Re-seeding: rebuilding the data directory from scratch.'),
})
  .prefault({})
  .describe('How this node rejoins as a standby after a failover (docs/runbook.md, "Rejoin").');

export type AgentRejoinConfig = z.output<typeof RejoinSchema>;
