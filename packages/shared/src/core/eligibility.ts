// Whether a standby may be promoted, as a reason value (null = eligible). Used by the agent for its
// own status and campaign decision; the witness has the final say through its own checks.

import type { Lsn, NodeId, PgSnapshot } from './messages.js';
import type { Timings } from './timings.js';
import type { SyncClaim } from './nodes/quorum-commit.js';

export interface PrimaryReport {
  /** Term of the primary that sent it. */
  readonly term: number;
  readonly lsn: Lsn;
  readonly timeline: number;
  readonly syncStandby: NodeId | null;
  /** The primary's claim in force (LeaseRequest.syncClaim; sent with three or more nodes only). */
  readonly syncClaim?: SyncClaim;
  /** When it was received, on the local monotonic clock. */
  readonly atMs: number;
}

export interface EligibilityInput {
  readonly self: NodeId;
  readonly nowMs: number;
  readonly timings: Timings;
  readonly replication: 'sync' | 'async';
  readonly lagBytesMax: bigint;
  readonly pg: PgSnapshot | null;
  readonly lastStreamingAtMs: number | null;
  readonly primaryReport: PrimaryReport | null;
  readonly maintenance: boolean;
  /** Three or more nodes: sync eligibility is the record's (etcd's electionDecision), not checked here. */
  readonly recordDecides?: boolean;
}

export function promotionBlocker(e: EligibilityInput): string | null {
  if (e.pg === null || !e.pg.running) return 'postgresql is not running';
  if (!e.pg.inRecovery) return 'not a standby (postgresql is not in recovery)';
  if (e.maintenance) return 'the cluster is in maintenance';
  if (e.lastStreamingAtMs === null) return 'has not streamed from the primary since the agent started';
  const sinceStreamingMs = e.nowMs - e.lastStreamingAtMs;
  if (sinceStreamingMs > e.timings.streamingGraceMs) {
    return `last streamed ${Math.round(sinceStreamingMs)} ms ago, more than streamingGraceMs ${e.timings.streamingGraceMs}`;
  }
  const report = e.primaryReport;
  if (report === null) return 'no report from the primary yet';
  if (report.timeline !== e.pg.timeline) return `on timeline ${e.pg.timeline} but the primary is on ${report.timeline}`;
  if (e.replication === 'sync') {
    if (e.recordDecides === true) return null;
    if (report.syncStandby !== e.self) return 'not the synchronous standby (replication degraded to async or not yet caught up)';
  } else {
    const lag = report.lsn > e.pg.lsn ? report.lsn - e.pg.lsn : 0n;
    if (lag > e.lagBytesMax) return `lag ${lag} bytes exceeds lagBytesMax ${e.lagBytesMax}`;
  }
  return null;
}
