// Timings of the protocol and the inequalities between them (docs/design.md, "Terms, leases, votes"
// and "Default timings and why they are both fast and calm"). Every duration is in milliseconds of
// the measuring node's monotonic clock.
//
// Every duration the core depends on is either here, checked with the others by timingViolations(),
// or derived from these (so it scales with them): the VIP re-verification (10·heartbeatMs), how long
// a fenced node keeps the VIP while EC2 may still route it (2·leaseMs), the switchover timeout
// (4·leaseMs), a restarted primary's boot grace (heartbeatMs + requestTimeoutMs), how long a standby's
// WAL receiver may be silent before it stops counting as streaming (receiverSilenceMs). The rejoin backoff
// (1 s doubling to 60 s, rejoinBackoffMs) is a retry policy no inequality involves, so it is no setting.

export interface Timings {
  /** How often the primary renews its lease and every node checks its peers. */
  readonly heartbeatMs: number;
  /** Timeout of one peer check / protocol request; must fit inside a heartbeat. */
  readonly requestTimeoutMs: number;
  /** Nominal lease length L. */
  readonly leaseMs: number;
  /** Clock-rate drift bound ρ between any two nodes (0.01 = 1 %). */
  readonly maxDriftRatio: number;
  /** Extra safety margin on both sides of the lease. */
  readonly leaseMarginMs: number;
  /** Consecutive failed checks before a node counts a peer as failed. */
  readonly failureChecks: number;
  /** Timeout of the primary's real write probe; a probe slower than this is a stall. */
  readonly writeProbeTimeoutMs: number;
  /** Consecutive stalled/failed write probes before the primary gives up (fence + release). */
  readonly writeProbeFailures: number;
  /** A standby is eligible only if it was streaming within this window before the election. */
  readonly streamingGraceMs: number;
  /** How long the primary waits for a lost sync standby before asking the witness to degrade to async. */
  readonly syncDegradeAfterMs: number;
  /**
   * The longest one EC2 call may take (moving the VIP). A new primary moves the VIP only while its
   * lease outlives the call by leaseMarginMs, so the lease must leave that much room between renewals.
   */
  readonly vipCallBudgetMs: number;
}

// Why these values, with the margin each inequality keeps at them and the failover time they give:
// docs/design.md, "Default timings and why they are both fast and calm".
export const defaultTimings: Timings = {
  heartbeatMs: 200,
  requestTimeoutMs: 150,
  leaseMs: 2400,
  maxDriftRatio: 0.01,
  leaseMarginMs: 100,
  failureChecks: 3,
  writeProbeTimeoutMs: 2000,
  writeProbeFailures: 2,
  streamingGraceMs: 10000,
  syncDegradeAfterMs: 3500,
  vipCallBudgetMs: 1000,
};

/**
 * How long a standby's WAL receiver may go without a message from its primary before the standby
 * stops counting itself as streaming (the WAL half of its check of the primary: docs/design.md,
 * "Terms, leases, votes", Two signals). A healthy primary sends WAL at least every heartbeat (its
 * write probe), so four heartbeats of silence, and never less than 2 s, mean the stream stopped. It
 * also sets how soon a standby can see a silent primary fail: receiverSilenceMs + requestTimeoutMs +
 * (failureChecks − 1)·heartbeatMs after the last WAL, which at the defaults exceeds the lease, so a
 * whole-host pause shorter than the lease never ends in a failover (earliestFailureSeenMs).
 */
export function receiverSilenceMs(t: Timings): number {
  return Math.max(2000, 4 * t.heartbeatMs);
}

/**
 * The earliest a standby can count a silent primary (host lost, paused or cut off) as failed, after
 * the primary's last WAL message reached it: its receiver silent for receiverSilenceMs, then
 * failureChecks checks a heartbeat apart, each of which waits requestTimeoutMs for the primary's
 * agent. (The last WAL before a silence may be up to a heartbeat older when the primary is idle and
 * only its write probe writes.)
 */
export function earliestFailureSeenMs(t: Timings): number {
  return receiverSilenceMs(t) + t.requestTimeoutMs + (t.failureChecks - 1) * t.heartbeatMs;
}

/** How long the primary may trust a lease, counted from when it SENT the renewal: L(1−ρ)−margin. */
export function leaseValidMs(t: Timings): number {
  return t.leaseMs * (1 - t.maxDriftRatio) - t.leaseMarginMs;
}

/**
 * Why a grantor must refuse a lease (or a vote, which doubles as the first lease of its term) to a
 * node that counts it valid for `requesterValidMs`, or null. The inequality between lease and promise
 * holds for one set of timings; a requester whose own timings give it a longer lease than this node's
 * would hold write authority after this node's promise ended. Shorter is safe, so changing timings
 * one node at a time in that direction never refuses anything. Absent (an older release): unchecked.
 */
export function leaseLengthConflict(own: Timings, requesterValidMs: number | undefined): string | null {
  if (requesterValidMs === undefined) return null;
  const mine = leaseValidMs(own);
  if (requesterValidMs <= mine + 0.001) return null;
  return `the requester counts its lease valid for ${Math.round(requesterValidMs)} ms, longer than the ${Math.round(mine)} ms this node's promise covers: give every node the same timings (leaseMs, maxDriftRatio, leaseMarginMs)`;
}

/**
 * The lease a primary can count on having left for the VIP move at any moment while its renewals
 * are answered on time: the freshest answered renewal was sent at most heartbeatMs +
 * requestTimeoutMs ago, and the move starts only with leaseMarginMs to spare beyond the call.
 */
export function vipMoveRoomMs(t: Timings): number {
  return leaseValidMs(t) - t.leaseMarginMs - t.heartbeatMs - t.requestTimeoutMs;
}

/**
 * How long one wait on the primary's renewal path may last: a quarter of the lease's validity (569 ms
 * at the defaults), never less than requestTimeoutMs, so four such waits still fit in one validity.
 * Two waits use it:
 * - a heartbeat's look at the local PostgreSQL (runner.ts), which comes before the renewal: bounded
 *   only by the SQL timeout (3 s) it let the lease lapse while the agent waited on a stalled server, and
 *   the standby took over before the primary had decided anything. A look that times out keeps the last
 *   view (a stall is not a crash) and the write probe decides (writeProbeTimeoutMs, writeProbeFailures);
 * - etcd's answer to a lease request (the etcd route): within requestTimeoutMs, under TCP's 200 ms
 *   minimum retransmission timeout, one lost packet failed the renewal; a late grant is safe since the
 *   lease counts from the request's send.
 */
export function renewalWaitBoundMs(t: Timings): number {
  return Math.max(t.requestTimeoutMs, Math.round(leaseValidMs(t) / 4));
}

/** How long a grantor keeps its promise, counted from when it RECEIVED the request: L(1+ρ)+margin. */
export function promiseMs(t: Timings): number {
  return t.leaseMs * (1 + t.maxDriftRatio) + t.leaseMarginMs;
}

/**
 * What the timings are checked against besides themselves: the quorum's backend, and on etcd the etcd
 * members' election timeout (their --election-timeout; pgvip does not set it).
 */
export type QuorumTimings =
  | { readonly backend: 'witness' }
  | { readonly backend: 'etcd'; readonly electionTimeoutMs: number };

const onWitness: QuorumTimings = { backend: 'witness' };

/** etcd's lessor looks for expired leases every 500 ms: a key may outlive its lease's TTL by up to that. */
export const etcdExpirySweepMs = 500;
/** etcd's default --election-timeout. */
export const etcdDefaultElectionTimeoutMs = 1000;

/**
 * The TTL etcd gives the leader key's lease for a lease of L: whole seconds, rounded up, and at least
 * etcd's own minimum of 1.5 election timeouts (etcd raises a shorter one). Longer than L: slower, never
 * less safe.
 */
export function etcdLeaseTtlMs(t: Timings, electionTimeoutMs: number): number {
  return Math.max(Math.max(1, Math.ceil(t.leaseMs / 1000)) * 1000, 1.5 * electionTimeoutMs);
}

/**
 * The least leaseMarginMs on etcd, ρ·L·(1−ρ)/(1+ρ): etcd counts the key's TTL from receipt on its
 * leader's clock and keeps no margin of its own, where the witness promises L·(1+ρ)+margin
 * (docs/design.md, Quorum on etcd, "The lease").
 */
export function etcdMinLeaseMarginMs(t: Timings): number {
  const r = t.maxDriftRatio;
  return (r * t.leaseMs * (1 - r)) / (1 + r);
}

/**
 * How long after the failed primary's last renewal reached its grantors a standby may win the next
 * term at the earliest: the grantors' promise, and on etcd also until the leader key is gone (its TTL
 * on the etcd leader's clock, plus etcd's expiry sweep). Failover-time estimates start from this.
 */
export function takeoverAfterMs(t: Timings, quorum: QuorumTimings = onWitness): number {
  const promise = promiseMs(t);
  if (quorum.backend !== 'etcd') return promise;
  const keyGone = etcdLeaseTtlMs(t, quorum.electionTimeoutMs) * (1 + t.maxDriftRatio) + etcdExpirySweepMs;
  return Math.max(promise, keyGone);
}

export interface TimingViolation {
  /** The field a person should change. */
  readonly field: keyof Timings;
  /** Which inequality failed, why it matters, and what would be valid. */
  readonly message: string;
}

/**
 * The inequalities the timings must satisfy; an empty list means they are consistent. On etcd also
 * etcdTimingViolations.
 */
export function timingViolations(t: Timings, quorum: QuorumTimings = onWitness): TimingViolation[] {
  const out: TimingViolation[] = [];
  if (!(t.maxDriftRatio >= 0 && t.maxDriftRatio < 0.1)) {
    out.push({ field: 'maxDriftRatio', message: `maxDriftRatio ${t.maxDriftRatio} must be in [0, 0.1): drift beyond 10 % means a broken clock, not drift` });
  }
  if (!(t.requestTimeoutMs < t.heartbeatMs)) {
    out.push({ field: 'requestTimeoutMs', message: `requestTimeoutMs ${t.requestTimeoutMs} must be < heartbeatMs ${t.heartbeatMs}: a check must finish before the next one starts` });
  }
  const valid = leaseValidMs(t);
  const minValid = 2 * t.heartbeatMs + t.requestTimeoutMs;
  if (!(valid >= minValid)) {
    const need = Math.ceil((minValid + t.leaseMarginMs) / (1 - t.maxDriftRatio));
    out.push({
      field: 'leaseMs',
      message: `leaseMs·(1−ρ)−leaseMarginMs = ${valid.toFixed(0)} must be ≥ 2·heartbeatMs + requestTimeoutMs = ${minValid}: otherwise one lost renewal fences a healthy primary; raise leaseMs to at least ${need}`,
    });
  }
  if (!(t.vipCallBudgetMs > 0)) {
    out.push({ field: 'vipCallBudgetMs', message: `vipCallBudgetMs ${t.vipCallBudgetMs} must be > 0` });
  } else {
    const room = vipMoveRoomMs(t);
    if (!(room >= t.vipCallBudgetMs)) {
      const needValid = t.vipCallBudgetMs + 2 * t.leaseMarginMs + t.heartbeatMs + t.requestTimeoutMs;
      const need = Math.ceil(needValid / (1 - t.maxDriftRatio));
      const lower = room >= 1 ? `, or lower vipCallBudgetMs to at most ${Math.floor(room)}` : '';
      out.push({
        field: 'leaseMs',
        message: `leaseMs·(1−ρ)−2·leaseMarginMs−heartbeatMs−requestTimeoutMs = ${room.toFixed(0)} must be ≥ vipCallBudgetMs = ${t.vipCallBudgetMs}: a new primary moves the VIP only while its lease outlives the EC2 call, and a lease renewed on time may be that old; otherwise a promoted node may never move the VIP; raise leaseMs to at least ${need}${lower}`,
      });
    }
  }
  if (!(t.failureChecks >= 1 && Number.isInteger(t.failureChecks))) {
    out.push({ field: 'failureChecks', message: `failureChecks ${t.failureChecks} must be an integer ≥ 1` });
  }
  const minGrace = promiseMs(t) + t.failureChecks * t.heartbeatMs;
  if (!(t.streamingGraceMs > minGrace)) {
    out.push({
      field: 'streamingGraceMs',
      message: `streamingGraceMs ${t.streamingGraceMs} must be > leaseMs·(1+ρ)+leaseMarginMs + failureChecks·heartbeatMs = ${minGrace.toFixed(0)}: otherwise the standby turns ineligible before it may ask for a vote, and no failover can ever happen`,
    });
  }
  if (!(t.writeProbeTimeoutMs >= t.requestTimeoutMs)) {
    out.push({ field: 'writeProbeTimeoutMs', message: `writeProbeTimeoutMs ${t.writeProbeTimeoutMs} must be ≥ requestTimeoutMs ${t.requestTimeoutMs}` });
  }
  if (!(t.syncDegradeAfterMs >= t.failureChecks * t.heartbeatMs)) {
    out.push({ field: 'syncDegradeAfterMs', message: `syncDegradeAfterMs ${t.syncDegradeAfterMs} must be ≥ failureChecks·heartbeatMs = ${t.failureChecks * t.heartbeatMs}: do not drop sync replication on a single missed check` });
  }
  if (quorum.backend === 'etcd') out.push(...etcdTimingViolations(t));
  return out;
}

/** What etcd adds to the inequalities: the margin must cover what etcd does not keep. */
export function etcdTimingViolations(t: Timings): TimingViolation[] {
  const min = etcdMinLeaseMarginMs(t);
  if (t.leaseMarginMs >= min) return [];
  return [{
    field: 'leaseMarginMs',
    message: `leaseMarginMs ${t.leaseMarginMs} must be ≥ ρ·L·(1−ρ)/(1+ρ) = ${min.toFixed(1)} on etcd: etcd counts the leader key's TTL from receipt and keeps no margin of its own, so only this margin keeps a primary's lease ending before its key; raise leaseMarginMs to at least ${Math.ceil(min)}`,
  }];
}

/**
 * Timings that are safe but work against the cluster: said at start, never refused. On etcd: an etcd
 * leader change, up to two election timeouts without renewals, longer than the lease validity minus a
 * heartbeat leaves the primary its lease through the standby alone (docs/design.md, Quorum on etcd).
 */
export function timingWarnings(t: Timings, quorum: QuorumTimings = onWitness): string[] {
  if (quorum.backend !== 'etcd') return [];
  const election = 2 * quorum.electionTimeoutMs;
  const room = leaseValidMs(t) - t.heartbeatMs;
  if (election <= room) return [];
  return [`an etcd leader change can take two election timeouts (2·${quorum.electionTimeoutMs} = ${election} ms), longer than the lease validity minus a heartbeat (${Math.round(room)} ms): while it lasts the primary keeps its lease through the standby alone, and fences if the standby is out of reach too; raise leaseMs (to at least ${Math.ceil((election + t.heartbeatMs + t.leaseMarginMs) / (1 - t.maxDriftRatio))}) or lower the etcd members' --election-timeout (quorum.etcd.electionTimeoutMs)`];
}
