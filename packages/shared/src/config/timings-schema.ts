// The `timings` block: every field of the core's `Timings`, optional, defaulting to
// `defaultTimings`, and then checked as a whole by the core's own `timingViolations()` so the
// config file and the decision core can never disagree about what is safe.
import type { z } from 'zod';
import { defaultTimings, timingViolations, type Timings } from '../core/timings.js';
import { closedObject, decimal, durationMs, integer } from './fields.js';
import { addComposedIssue } from './problem.js';

/** Marks an issue as a broken timing inequality (the loader reports those as PGVIP_CONFIG_TIMING). */
export const timingIssueKind = 'timing';

const d = defaultTimings;

const timingFields = {
  heartbeatMs: durationMs(10, 60_000).default(d.heartbeatMs).describe('How often the primary renews its lease and every node checks its peers.'),
  requestTimeoutMs: durationMs(1, 60_000).default(d.requestTimeoutMs).describe('Timeout of one peer check or protocol request; must be shorter than heartbeatMs, and longer than a round trip between the nodes (no check here can see the network: with requests timing out, leases lapse and no failover completes).'),
  leaseMs: durationMs(100, 600_000).default(d.leaseMs).describe('Nominal lease length L. The primary trusts a lease for L·(1−ρ)−leaseMarginMs from sending the renewal; grantors keep their promise for L·(1+ρ)+leaseMarginMs.'),
  maxDriftRatio: decimal().default(d.maxDriftRatio).describe('Bound ρ on how much faster or slower one node\'s monotonic clock may run than another\'s (0.01 = 1 %); must be in [0, 0.1).'),
  leaseMarginMs: durationMs(0, 60_000).default(d.leaseMarginMs).describe('Extra safety margin on both sides of the lease (scheduling delays, timer slack).'),
  failureChecks: integer(1, 100).default(d.failureChecks).describe('Consecutive failed checks before a node counts a peer as failed.'),
  writeProbeTimeoutMs: durationMs(1, 600_000).default(d.writeProbeTimeoutMs).describe('Timeout of the primary\'s real write probe; a slower probe counts as a stall.'),
  writeProbeFailures: integer(1, 100).default(d.writeProbeFailures).describe('Consecutive stalled or failed write probes before the primary fences itself and releases its lease.'),
  streamingGraceMs: durationMs(1, 3_600_000).default(d.streamingGraceMs).describe('A standby is eligible for promotion only if it was streaming within this window before the election.'),
  syncDegradeAfterMs: durationMs(1, 3_600_000).default(d.syncDegradeAfterMs).describe('How long the primary waits for a lost synchronous standby (gone from pg_stat_replication, or silent for 3 s), counted from its last reply, before asking the quorum (the witness, or etcd) to let it drop to async; commits wait meanwhile. Writes block about this long plus a heartbeat when the sync standby is lost.'),
  vipCallBudgetMs: durationMs(50, 60_000).default(d.vipCallBudgetMs).describe('The longest one EC2 call (moving the VIP) may take. A new primary moves the VIP only while its lease outlives the call, so leaseMs must leave room for it (see the inequalities).'),
} satisfies { [K in keyof Timings]: z.ZodType<Timings[K]> };

export const TimingsSchema = closedObject(timingFields)
  .superRefine((timings, ctx) => {
    for (const violation of timingViolations(timings)) {
      // The core's message already names the values and what would satisfy the inequality.
      addComposedIssue(ctx, [violation.field], violation.message, timingIssueKind);
    }
  })
  .prefault({})
  .describe('Protocol timings in milliseconds of each node\'s monotonic clock. Omit a field to use its default; the whole block must satisfy the inequalities below.');
