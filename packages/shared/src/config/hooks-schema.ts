// The `hooks` block of the agent file: programs on this database node that pgvip runs around a
// role change (docs/hooks.md). Node-local, so it lives in the agent file and not in the cluster
// block: each node may run its own scripts. Paths are checked at start (preflight.ts).
import { z } from 'zod';
import { absolutePath, closedObject, durationMs, listOf } from './fields.js';

function hook(what: string, timeoutMs: number, timeoutWhat: string) {
  return closedObject({
    path: absolutePath('/usr/local/bin/pgvip-hook').describe('Executable to run (absolute path; it must exist and be executable by the agent\'s user when the agent starts). It gets the event as JSON on stdin and in PGVIP_* environment variables.'),
    args: listOf(z.string({ error: 'must be a string' }), 'strings').default([]).describe('Arguments passed as they are (no shell is involved: `;` or `$(...)` are plain text).'),
    timeoutMs: durationMs(100, 600_000).default(timeoutMs).describe(timeoutWhat),
  })
    .optional()
    .describe(what);
}

const asyncTimeout = 'The hook (and every process it started: its process group) is killed when it runs longer than this; the next queued hook then runs.';

export const HooksSchema = closedObject({
  beforePromote: hook(
    'Runs before this node\'s PostgreSQL is promoted, and the promotion waits for it. Exit 0 lets the promotion go ahead; any other exit, a timeout or a program that cannot start vetoes it: the promotion fails as a failed pg_promote does, the node stays a standby and the agent tries again (running the hook again) a heartbeat later (docs/hooks.md).',
    5000,
    'Longest wait for the hook; at the timeout it is killed and the promotion is vetoed. Failover time grows by the hook\'s run time.',
  ),
  afterPromote: hook('Runs after this node\'s PostgreSQL was promoted (asynchronously: the agent does not wait).', 30_000, asyncTimeout),
  onFence: hook('Runs after this node fenced its PostgreSQL (it stopped taking writes; asynchronously).', 30_000, asyncTimeout),
  onRejoin: hook('Runs after this node rejoined as a standby of the new primary (asynchronously).', 30_000, asyncTimeout),
  onRoleChange: hook('Runs after every change of this node\'s role (primary, promoting, standby, candidate, fenced, rejoining, demoted, starting; asynchronously).', 30_000, asyncTimeout),
})
  .prefault({})
  .describe('Programs run on this node around role changes, e.g. to reload PgBouncer or update DNS (docs/hooks.md). The asynchronous ones run one at a time, in the order of their events.');

export type AgentHooksConfig = z.output<typeof HooksSchema>;
