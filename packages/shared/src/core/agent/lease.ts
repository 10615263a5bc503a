// The holder's lease: the primary asks both grantors for it every heartbeat, counts it from when it
// sent the request, fences when it lapses, and gives it back after fencing when its own PostgreSQL
// cannot write (the fast path). docs/design.md, Terms, leases, votes.

import type { LeaseReply, LeaseRequest, NodeId, VoteReply } from '../messages.js';
import { leaseValidMs, promiseMs } from '../timings.js';
import {
  inBootGrace, isOtherNode, isPrimaryOfTerm, leaseRemainingMs, manyNodes, releasedOwnLease, restartHeld,
  standbyGrantors,
} from './facts.js';
import type { AgentState } from './state.js';
import { fence } from './fence.js';
import type { Step } from './step.js';

export interface LeaseSend {
  readonly seq: number;
  readonly sentAtMs: number;
  readonly term: number;
}

/**
 * The fast path's release: `pending` from the decision to give the lease up until PostgreSQL is
 * fenced, then `released` for the term (the standby gets a full promise period from `atMs` before
 * this node brings its server back or asks for the lease again).
 */
export type HolderRelease =
  | { readonly phase: 'none' }
  | { readonly phase: 'pending' }
  | { readonly phase: 'released'; readonly term: number; readonly atMs: number };

export interface HolderLease {
  /** Lease validity on this node's clock, counted from when the granted request was sent. */
  readonly held: { readonly term: number; readonly validUntilMs: number } | null;
  /**
   * Three or more nodes: each grantor's grant for `held`'s term, valid until (counted from the send).
   * The lease is valid on etcd's grant OR on every eligible standby's (docs/design.md, "More than one
   * standby"); with two nodes any one grant is enough, as the rule then reads.
   */
  readonly grants: Readonly<Record<NodeId, { readonly term: number; readonly untilMs: number }>>;
  /** The last lease requests sent (the grant names its request's seq). */
  readonly sends: readonly LeaseSend[];
  readonly nextSeq: number;
  readonly release: HolderRelease;
  /** The last reason each grantor gave for refusing our lease, until it grants again: said once. */
  readonly refusals: Readonly<Record<NodeId, string>>;
  /**
   * Three or more nodes: the grantors etcd's term record names for `term` (from its replies), or
   * `nodes` null when etcd granted naming none (the config's eligible standbys count then). Not known
   * for the current term (an agent restart, before an etcd reply that read the record): only etcd's grant
   * counts, so a config that differs from the term record's (a rolling change) never makes a lease on too few grants.
   */
  readonly termGrantors?: { readonly term: number; readonly nodes: readonly NodeId[] | null };
}

/** `seqBase` exceeds every seq an earlier process of this node sent (see bootAgent). */
export function initialLease(seqBase: number): HolderLease {
  return { held: null, grants: {}, sends: [], nextSeq: Math.max(1, seqBase), release: { phase: 'none' }, refusals: {} };
}

/** Rule one of the primary: a lapsed lease fences before anything else (docs/design.md, Terms, leases, votes). */
export function checkLease(st: Step): void {
  const s = st.s;
  const pg = s.pg;
  if (pg === null) return;
  // Term 0: the cluster has never elected anyone; the server's writability predates pgvip.
  if (s.durable.term === 0) return;
  const primary = isPrimaryOfTerm(s);
  // A PostgreSQL that is not in recovery on a node that is not primary of the term must never write.
  const mustBeFenced = primary ? leaseRemainingMs(s) === 0 && !inBootGrace(s) : true;
  if (pg.running && !pg.inRecovery && mustBeFenced && pg.writable) {
    const d = s.durable;
    fence(st, primary ? `lease for term ${d.term} lapsed` : `term ${d.term} belongs to ${d.primaryOfTerm ?? 'another node'}`);
  }
}

/** Ask the quorum (witness or etcd) and the standby for the lease (every heartbeat, and at once after a handover). */
export function renewLease(st: Step): void {
  const s = st.s;
  const pg = s.pg;
  // No renewals without a running server: its report (timeline, LSN) would be meaningless. Except
  // in a planned restart, which renews with the report from before it (agent/restart.ts).
  const held = restartHeld(s) ? s.restart?.report ?? null : null;
  const report = pg?.running === true ? pg : held;
  if (report === null || s.lease.release.phase === 'pending' || releasedOwnLease(s)) return;
  const seq = s.lease.nextSeq;
  const msg: LeaseRequest = {
    ...st.envelope(),
    kind: 'lease-request',
    seq,
    lsn: report.lsn,
    timeline: report.timeline,
    syncStandby: report.syncStandby,
    // Three or more nodes: the claim in force, for the standbys' syncMember and the load balancers.
    ...(manyNodes(s) && pg?.syncClaim !== undefined ? { syncClaim: pg.syncClaim } : {}),
  };
  const sends = [...s.lease.sends, { seq, sentAtMs: s.nowMs, term: s.durable.term }];
  st.set({ lease: { ...s.lease, nextSeq: seq + 1, sends: sends.length > 16 ? sends.slice(-16) : sends } });
  st.send(s.settings.quorum.id, msg);
  for (const grantor of askedGrantors(s)) st.send(grantor, msg);
}

/**
 * The standbys whose grants make a lease together (with three or more nodes): the term record's
 * grantors as etcd named them; the config's eligible standbys when etcd's record names none; none
 * while etcd has not answered in this term (docs/design.md, "More than one standby").
 */
export function countedGrantors(s: AgentState, term: number): readonly NodeId[] {
  if (!manyNodes(s)) return standbyGrantors(s);
  const known = s.lease.termGrantors;
  if (known === undefined || known.term !== term) return [];
  return known.nodes === null ? standbyGrantors(s) : known.nodes.filter((n) => n !== s.settings.self);
}

/** Who is asked for the lease and told of its release: the config's standbys and the term's grantors we can reach. */
export function askedGrantors(s: AgentState): readonly NodeId[] {
  const known = s.lease.termGrantors;
  const record = known !== undefined && known.term === s.durable.term && known.nodes !== null ? known.nodes : [];
  return [...new Set([...standbyGrantors(s), ...record.filter((n) => isOtherNode(s, n))])];
}

/** etcd named the grantors of our term in a reply: kept for counting grants (countedGrantors). */
export function noteTermGrantors(st: Step, msg: LeaseReply | VoteReply): void {
  const s = st.s;
  // Only the primary of that term counts grants (a standby learning the term from the reply does not).
  if (!manyNodes(s) || msg.from !== s.settings.quorum.id || msg.term !== s.durable.term || !isPrimaryOfTerm(s)) return;
  // A refusal without grantors may have read nothing (etcd unreachable): it says nothing of the record,
  // so what is known stays (a term's grantors never change within it), and with nothing known no standby
  // grant counts. Only a grant (always from a read of the term record) without them means "names none".
  if (msg.grantorsOfTerm === undefined && !msg.granted) return;
  const nodes = msg.grantorsOfTerm ?? null;
  const known = s.lease.termGrantors;
  if (known !== undefined && known.term === msg.term && sameNodes(known.nodes, nodes)) return;
  const termGrantors = { term: msg.term, nodes: nodes === null ? null : [...nodes].sort() };
  st.set({ lease: { ...st.s.lease, termGrantors } });
  if (nodes !== null && !sameNodes([...nodes], standbyGrantors(s))) {
    const config = standbyGrantors(s).join(', ');
    st.because(`term ${msg.term}'s record names grantors ${nodes.join(', ') || 'none'}, the config ${config}: the lease counts the record's`);
  }
}

function sameNodes(a: readonly NodeId[] | null, b: readonly NodeId[] | null): boolean {
  if (a === null || b === null) return a === b;
  const x = [...a].sort();
  const y = [...b].sort();
  return x.length === y.length && x.every((n, i) => n === y[i]);
}

/**
 * Three or more nodes: the lease's end from each grantor's grant in `term`, or null when none counts:
 * etcd's grant, or the earliest of every eligible standby's (a standby that granted nothing yet
 * counts as none).
 */
export function leaseFromGrants(
  s: AgentState, grants: HolderLease['grants'], term: number,
): number | null {
  const until = (node: NodeId): number => {
    const g = grants[node];
    return g !== undefined && g.term === term ? g.untilMs : -Infinity;
  };
  const grantors = countedGrantors(s, term);
  const standbys = grantors.length === 0 ? -Infinity : Math.min(...grantors.map(until));
  const best = Math.max(until(s.settings.quorum.id), standbys);
  return best === -Infinity ? null : best;
}

export function onLeaseReply(st: Step, msg: LeaseReply): void {
  if (msg.from === st.s.settings.quorum.id) st.set({ maintenance: msg.maintenance });
  noteTermGrantors(st, msg);
  const s = st.s;
  const lease = st.s.lease;
  const sent = lease.sends.find((x) => x.seq === msg.seq);
  const lastRefusal = lease.refusals[msg.from];
  if (!msg.granted && sent !== undefined && sent.term === s.durable.term && lastRefusal !== msg.reason) {
    st.set({ lease: { ...lease, refusals: { ...lease.refusals, [msg.from]: msg.reason } } });
    st.because(`${msg.from} refused the lease for term ${s.durable.term}: ${msg.reason}`);
  } else if (msg.granted && lastRefusal !== undefined) {
    const { [msg.from]: _granted, ...others } = lease.refusals;
    st.set({ lease: { ...lease, refusals: others } });
  }
  if (!msg.granted || sent === undefined || sent.term !== s.durable.term || !isPrimaryOfTerm(s)) return;
  // Counted from when the request was SENT: the grantor's promise started later than that.
  const validUntilMs = sent.sentAtMs + leaseValidMs(s.settings.timings);
  const held = st.s.lease.held;
  if (manyNodes(s)) {
    const term = s.durable.term;
    const prev = st.s.lease.grants[msg.from];
    const mine = prev !== undefined && prev.term === term ? Math.max(prev.untilMs, validUntilMs) : validUntilMs;
    const grants = { ...st.s.lease.grants, [msg.from]: { term, untilMs: mine } };
    const until = leaseFromGrants(s, grants, term);
    const grown = until !== null && (held === null || held.term !== term || until > held.validUntilMs);
    st.set({ lease: { ...st.s.lease, grants, ...(grown ? { held: { term, validUntilMs: until } } : {}) } });
    return;
  }
  if (held === null || held.term !== s.durable.term || validUntilMs > held.validUntilMs) {
    st.set({ lease: { ...st.s.lease, held: { term: s.durable.term, validUntilMs } } });
  }
}

/**
 * The fast path: our own PostgreSQL is dead (one check: a refused connection is definitive) or
 * cannot write (consecutive stalled probes). Fence, then release the lease. Returns true when the
 * primary's step ends here (a release decided or pending).
 */
export function releaseIfPgFailed(st: Step): boolean {
  const s = st.s;
  const pg = s.pg;
  if (pg === null) return true;
  const t = s.settings.timings;
  const pending = s.lease.release.phase === 'pending';
  const pgGone = !pg.running && !pg.inRecovery && s.writeProbeFailures >= 1;
  const failing = pgGone || s.writeProbeFailures >= t.writeProbeFailures;
  if (!pg.inRecovery && failing && !pending && !releasedOwnLease(s)) {
    if (!s.fence.fenced) fence(st, `postgresql failed ${s.writeProbeFailures} write probes`);
    st.set({ lease: { ...st.s.lease, release: { phase: 'pending' } } });
    st.because('giving up the lease: local postgresql cannot write');
    maybeRelease(st);
    return true;
  }
  if (pending) {
    maybeRelease(st);
    return true;
  }
  const release = s.lease.release;
  const standbysTurn = release.phase === 'released' && s.nowMs - release.atMs < promiseMs(t);
  if (releasedOwnLease(s) && s.writeProbeFailures === 0 && pg.running && !pg.inRecovery && !standbysTurn) {
    // PostgreSQL recovered before anyone took over: ask for the lease again. Safe: a grantor that has
    // voted for a newer term refuses, and one that grants again promises again.
    st.set({ lease: { ...st.s.lease, release: { phase: 'none' } } });
    st.because(`postgresql recovered; asking for the lease for term ${s.durable.term} again`);
  }
  return false;
}

function maybeRelease(st: Step): void {
  const s = st.s;
  if (s.fenceInFlight !== null) return;
  // Rule: fence BEFORE release. A fence that failed (a server refusing sessions, a stop that timed out)
  // is tried again; otherwise the lease would be neither released nor renewed, and the standby would
  // have to wait for it to run out.
  if (!s.fence.fenced) return fence(st, s.fence.reason ?? 'local postgresql cannot write');
  const reason = s.fence.reason ?? 'fenced';
  const msg = { ...st.envelope(), kind: 'lease-release' as const, reason, leaseSeq: s.lease.nextSeq - 1 };
  st.send(s.settings.quorum.id, msg);
  for (const grantor of askedGrantors(s)) st.send(grantor, msg);
  st.set({ lease: { ...s.lease, held: null, grants: {}, release: { phase: 'released', term: s.durable.term, atMs: s.nowMs } } });
  st.notify('lease-released', `released lease for term ${s.durable.term}: ${msg.reason}`);
  st.because(`released the lease for term ${s.durable.term} after fencing`);
}

/**
 * Our PostgreSQL is down after we fenced and released (crash, or a stop on a stalled disk). Start it
 * again: it comes back read-only (the fence is in its configuration), and either someone else took
 * over (we rejoin) or nobody did and we regain the lease and unfence.
 */
export function restartFencedPostgres(st: Step): void {
  const s = st.s;
  const release = s.lease.release;
  if (!s.fence.fenced || s.inFlight !== null || s.fenceInFlight !== null) return;
  if (release.phase !== 'released' || release.term !== s.durable.term) return;
  // The standby gets a full promise period to take over before we bring our server back.
  if (s.nowMs - release.atMs < promiseMs(s.settings.timings)) return;
  if (s.nowMs - s.fence.restartedAtMs < 2 * s.settings.timings.heartbeatMs) return;
  st.set({ fence: { ...s.fence, restartedAtMs: s.nowMs } });
  st.effect({ kind: 'start-postgres' });
  st.because('starting the fenced postgresql again');
}
