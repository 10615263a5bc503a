// Quorum commit driven by the primary with three or more nodes on etcd (docs/design.md, "More than
// one standby"): the setting in force (pg.syncClaim) and the sync record in etcd are two claims, and
// every change follows `syncPlan`, one step at a time, so that R1 (the setting implies the record)
// and R2 (the record only changes to a claim already true) hold after every step:
//   record    → sync-update 'record' (etcd's txn on this node's leader key and the term record)
//   postgres  → set-sync (done once the setting is in force for every walsender)
//   catch-up  → sync-catch-up (k members flushed up to L, read after the setting took effect)
// The record is NO_CLAIM at a new term (the campaign, handover and forced txns reset it). After an
// agent restart in the same term it is unknown: the setting in force implies it (R1), so a catch-up
// under that setting followed by writing the setting as the record makes it known again. When the
// members the setting names are lost that catch-up can never succeed (review-17b G2), so the record
// is written to NO_CLAIM first: every record implies it and it is true, and the plan goes on from it.

import { normalClaim, sameClaim, syncPlan, NO_CLAIM, type SyncClaim, type SyncStep } from '../nodes/quorum-commit.js';
import type { NodeId, ReplicaState, SyncUpdateReply } from '../messages.js';
import { quorumName } from '../quorum.js';
import type { Step } from './step.js';
import { lossBeganAtMs } from './sync.js';
import type { AgentState } from './state.js';

export interface ClaimSyncState {
  /** The sync record of this term as far as this primary knows; null: unknown (a restart mid-term). */
  readonly record: SyncClaim | null;
  /**
   * The record write in flight (one at a time). `sentAtMs` null: send it (again) at the next look.
   * `mayHaveCommitted`: an earlier send of this claim got no definite answer (none came, or etcd's
   * txn may still land late), so etcd's record is either `record` or `claim`; the same claim is then
   * sent again until it is granted, and no other sync step is taken meanwhile (R1 against both).
   */
  readonly asked: {
    readonly claim: SyncClaim;
    readonly sentAtMs: number | null;
    readonly mayHaveCommitted?: boolean;
  } | null;
  /** The setting under which the last catch-up succeeded (valid while that setting stays in force). */
  readonly caughtUpFor: SyncClaim | null;
  /** When each standby was last seen streaming from this primary (pg_stat_replication). */
  readonly seenAtMs: Readonly<Record<NodeId, number>>;
}

export const unknownClaimSync: ClaimSyncState = { record: null, asked: null, caughtUpFor: null, seenAtMs: {} };
/** At a new term the txn that made it wrote the reset record. */
export const newTermClaimSync: ClaimSyncState = { ...unknownClaimSync, record: NO_CLAIM };

/**
 * What the setting should be now: every eligible standby streaming from this primary, and those
 * that stopped less than syncDegradeAfterMs ago, with k = min(synchronousCount, their number). A
 * member this agent has not seen streaming since it started counts as seen at its start: after a
 * restart the degrade waits as long as after a loss it saw. With degrade 'block', k never drops below
 * what the record reached (capped at synchronousCount; the setting in force while the record is
 * unknown, as it implies the record): the lost members stay named, and commits wait for them.
 */
export function wantedNow(s: AgentState, setting: SyncClaim, seenAtMs: Readonly<Record<NodeId, number>>): SyncClaim {
  if (s.settings.replication !== 'sync') return NO_CLAIM;
  const t = s.settings.timings;
  const eligible = new Set(s.settings.nodes.filter((n) => !n.noFailover && n.id !== s.settings.self).map((n) => n.id));
  const streaming = (s.pg?.replicas ?? []).filter((r) => r.streaming && eligible.has(r.node)).map((r) => r.node);
  const recent = setting.members
    .filter((m) => eligible.has(m) && s.nowMs - (seenAtMs[m] ?? s.bootAtMs) < t.syncDegradeAfterMs);
  let members = [...new Set([...streaming, ...recent])];
  const k = s.settings.synchronousCount;
  if (s.settings.degrade === 'block') {
    const known = s.claimSync.record ?? setting;
    const floor = Math.min(k, known.k);
    if (Math.min(k, members.length) < floor) {
      const named = [...setting.members, ...known.members].filter((m) => eligible.has(m));
      members = [...new Set([...members, ...named])];
    }
  }
  return normalClaim({ members, k: Math.min(k, members.length) });
}

/** The next step toward the wanted claim, or null when setting and record are as wanted. */
export function nextClaimStep(s: AgentState, setting: SyncClaim, want: SyncClaim): SyncStep | null {
  const cs = s.claimSync;
  const inForce = normalClaim(setting);
  // Record unknown and fewer than k of the setting's members still wanted: the catch-up under the
  // setting cannot succeed, so the record is made known by the one claim every record implies.
  const keptOfSetting = inForce.members.filter((m) => want.members.includes(m)).length;
  if (cs.record === null && inForce.k > 0 && keptOfSetting < inForce.k) {
    return { kind: 'record', claim: NO_CLAIM };
  }
  const steps: SyncStep[] = cs.record === null
    ? [
      ...(inForce.k === 0 ? [] : [{ kind: 'catch-up' as const, members: setting.members, count: setting.k }]),
      { kind: 'record' as const, claim: inForce },
    ]
    : syncPlan({ record: cs.record, postgres: setting }, want);
  const [first, second] = steps;
  if (first?.kind === 'catch-up' && cs.caughtUpFor !== null && sameClaim(cs.caughtUpFor, setting)) return second ?? null;
  return first ?? null;
}

/** The primary's sync step with three or more nodes, when no effect is in flight and no VIP step was due. */
export function manageClaimSync(st: Step): void {
  const s = st.s;
  const pg = s.pg;
  if (pg === null || pg.syncClaim === undefined) return;
  const t = s.settings.timings;
  noteStreamingReplicas(st, pg.replicas ?? []);
  const cs = st.s.claimSync;
  const seenAtMs = cs.seenAtMs;
  if (cs.asked !== null) {
    // The bridge drops answers later than requestTimeoutMs, so after that none can still come; but
    // the txn may have committed (docs/design.md, "More than one standby": a lost record write). The
    // record is then one of two, and only the same claim, granted, makes it known again.
    const a = cs.asked;
    if (a.sentAtMs !== null && s.nowMs - a.sentAtMs < t.requestTimeoutMs + t.heartbeatMs) return;
    const asked = { claim: a.claim, sentAtMs: s.nowMs, mayHaveCommitted: true };
    st.set({ claimSync: { ...st.s.claimSync, asked } });
    st.send(s.settings.quorum.id, { ...st.envelope(), kind: 'sync-update', change: 'record', claim: a.claim });
    st.because(
      `asking ${quorumName(s.settings.quorum.backend)} again to record ${describeClaim(a.claim)}: an earlier write got no ` +
      `definite answer and may have committed, so no sync step until it is granted`,
    );
    return;
  }
  const setting = normalClaim(pg.syncClaim);
  const want = wantedNow(st.s, setting, seenAtMs);
  const step = nextClaimStep(st.s, setting, want);
  if (step === null) return;
  switch (step.kind) {
    case 'record':
      st.set({ claimSync: { ...st.s.claimSync, asked: { claim: step.claim, sentAtMs: s.nowMs } } });
      st.send(s.settings.quorum.id, { ...st.envelope(), kind: 'sync-update', change: 'record', claim: step.claim });
      st.because(`asking ${quorumName(s.settings.quorum.backend)} to record ${describeClaim(step.claim)} (setting ${describeClaim(setting)})`);
      return;
    case 'postgres':
      st.set({ claimSync: { ...st.s.claimSync, caughtUpFor: null } });
      st.effect({ kind: 'set-sync', claim: step.claim });
      st.because(`synchronous_standby_names: ${describeClaim(setting)} → ${describeClaim(step.claim)} (record ${describeClaim(st.s.claimSync.record ?? setting)})`);
      return;
    case 'catch-up':
      st.effect({ kind: 'sync-catch-up', members: step.members, count: step.count, timeoutMs: catchUpTimeoutMs(s) });
      st.because(`waiting for ${step.count} of ${step.members.join(', ')} to flush the WAL written before ${describeClaim(setting)} took effect`);
  }
}

function catchUpTimeoutMs(s: AgentState): number {
  return Math.max(s.settings.timings.syncDegradeAfterMs, 4 * s.settings.timings.heartbeatMs);
}

/**
 * When each standby was last seen streaming from this primary: at every look, busy or not. A standby
 * streams until it has been silent for a while (pg-snapshot.ts), so the time is its last reply when
 * the shell reported it (the tick's `replyAgeMs`): the degrade counts from the loss, not its detection.
 */
export function noteStreamingReplicas(st: Step, replicas: readonly ReplicaState[]): void {
  const streaming = replicas.filter((r) => r.streaming);
  if (streaming.length === 0) return;
  const seenAtMs = { ...st.s.claimSync.seenAtMs };
  for (const r of streaming) seenAtMs[r.node] = Math.max(seenAtMs[r.node] ?? -Infinity, lossBeganAtMs(st.s, r.node));
  st.set({ claimSync: { ...st.s.claimSync, seenAtMs } });
}

/** The answer to a record write: granted, the record is what was asked. */
export function onClaimRecordReply(st: Step, msg: SyncUpdateReply): void {
  const s = st.s;
  const asked = s.claimSync.asked;
  if (asked === null) return;
  if (!msg.granted) {
    // A refusal says this send did not commit. When no earlier send of the claim is unanswered the
    // record is still the old one; otherwise that earlier txn may yet land: ask again next look.
    if (asked.mayHaveCommitted === true) {
      st.set({ claimSync: { ...s.claimSync, asked: { ...asked, sentAtMs: null } } });
      st.because(`${quorumName(s.settings.quorum.backend)} did not record ${describeClaim(asked.claim)} (${msg.reason}); an earlier write may have, so it is asked again`);
      return;
    }
    st.set({ claimSync: { ...s.claimSync, asked: null } });
    st.because(`${quorumName(s.settings.quorum.backend)} did not record ${describeClaim(asked.claim)}: ${msg.reason}`);
    return;
  }
  const before = s.claimSync.record;
  st.set({ claimSync: { ...s.claimSync, record: asked.claim, asked: null } });
  // Unknown before (a restart): lowered when the setting in force claimed more.
  const was = before?.k ?? normalClaim(s.pg?.syncClaim ?? NO_CLAIM).k;
  if (asked.claim.k < was) st.notify('sync-degraded', `sync record lowered to ${describeClaim(asked.claim)} with etcd's agreement`);
  if (asked.claim.k > was && before !== null) st.notify('sync-restored', `sync record raised to ${describeClaim(asked.claim)}`);
  st.because(`sync record is ${describeClaim(asked.claim)}`);
}

/** set-sync finished: the setting is in force (the next observation shows it too). */
export function onSyncSet(st: Step, claim: SyncClaim): void {
  const pg = st.s.pg;
  if (pg !== null) st.set({ pg: { ...pg, syncClaim: normalClaim(claim) } });
}

/** sync-catch-up finished: R2's proof for the setting in force. */
export function onCatchUpDone(st: Step, ok: boolean): void {
  const setting = st.s.pg?.syncClaim;
  if (ok && setting !== undefined) st.set({ claimSync: { ...st.s.claimSync, caughtUpFor: normalClaim(setting) } });
}

export function describeClaim(c: SyncClaim): string {
  const n = normalClaim(c);
  return n.k === 0 ? 'async (no claim)' : `ANY ${n.k} (${n.members.join(', ')})`;
}
