// A planned switchover, run by the primary:
//
//   request ──► fencing ──(fenced: final LSN)──► catching-up ──(standby replayed it)──► handing-over
//     ──(quorum-handover done: the quorum records term + 1 for the standby)──► handover of term + 1
//   fencing or catching-up, after switchoverTimeoutMs: aborted, and the primary resumes; so does a
//   handing-over whose quorum-handover failed (the quorum still names this node for its term)
//
// The quorum records the handover before the standby hears of it: on etcd the handover txn must
// commit first, or the standby would hold term + 1 while etcd's term record still said this term,
// and its take of the leader key would fail. The witness has nothing to record (it learns the term
// from the nodes' statuses), so its shell reports the effect done at once. docs/design.md, Quorum
// on etcd.

import type { EffectResult } from '../actions.js';
import type { Handover, Lsn, NodeId, PeerRequest } from '../messages.js';
import { quorumName } from '../quorum.js';
import { termAfter, termBoundReached } from '../terms.js';
import { agentRole, isOtherNode, isPrimaryOfTerm, manyNodes, statusOf } from './facts.js';
import { fence } from './fence.js';
import type { AgentState } from './state.js';
import type { Step } from './step.js';
import { enterTerm } from './term.js';

export type SwitchoverState =
  | { readonly step: 'fencing'; readonly to: NodeId; readonly startedAtMs: number }
  | { readonly step: 'catching-up'; readonly to: NodeId; readonly startedAtMs: number; readonly finalLsn: Lsn }
  /** The quorum-handover effect (pipeline slot) is in flight; no timeout: its outcome decides. */
  | { readonly step: 'handing-over'; readonly to: NodeId; readonly startedAtMs: number; readonly finalLsn: Lsn };

type SwitchoverRequest = Extract<PeerRequest, { kind: 'switchover-request' }>;

export function onSwitchoverRequest(st: Step, msg: SwitchoverRequest): void {
  const s = st.s;
  const reject = (reason: string) => st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted: false, reason });
  if (msg.term < s.durable.term) return reject('stale term');
  if (!isPrimaryOfTerm(s) || agentRole(s) !== 'primary') return reject('this node is not the primary');
  if (termAfter(s.durable.term) === null) return reject(termBoundReached);
  if (!isOtherNode(s, msg.to)) return reject(`${msg.to} is not the standby`);
  if (s.settings.nodes.some((n) => n.id === msg.to && n.noFailover)) return reject(`${msg.to} has noFailover: it is never promoted`);
  if (s.switchover !== null) return reject('a switchover is already running');
  // The primary judges readiness from its own replication view, which is authoritative for sync.
  const notReady = switchoverBlocker(s, msg.to);
  if (notReady !== null) return reject(`standby not ready: ${notReady}`);
  st.set({ switchover: { step: 'fencing', to: msg.to, startedAtMs: s.nowMs } });
  // Three or more nodes: a clean stop (switchoverStops).
  fence(st, `switchover to ${msg.to}`, switchoverStops(s) ? 'fast-stop' : s.settings.fencing);
  st.reply(msg.from, { ...st.envelope(), kind: 'ack', accepted: true, reason: 'switchover started' });
}

/** Why `to` cannot take over in a planned switchover right now, or null. */
function switchoverBlocker(s: AgentState, to: NodeId): string | null {
  const peer = statusOf(s, to);
  const pg = s.pg;
  if (peer === null) return 'unreachable';
  if (pg === null) return 'local postgresql not observed yet';
  if (!peer.pg.inRecovery || !peer.pg.streaming) return 'not streaming';
  if (peer.pg.timeline !== pg.timeline) return `on timeline ${peer.pg.timeline}, primary on ${pg.timeline}`;
  if (s.settings.replication === 'sync' && manyNodes(s)) {
    // Three or more nodes: a member of the claim in force, streaming from here.
    const claim = pg.syncClaim;
    if (claim === undefined || claim.k === 0 || !claim.members.includes(to)) return 'not a synchronous standby yet';
    if (!(pg.replicas ?? []).some((r) => r.node === to && r.streaming)) return 'not streaming from this primary';
  } else if (s.settings.replication === 'sync') {
    if (pg.syncStandby !== s.settings.peer || !pg.standbyInSync) return 'not the synchronous standby yet';
  } else {
    const lag = pg.lsn > peer.pg.lsn ? pg.lsn - peer.pg.lsn : 0n;
    if (lag > s.settings.lagBytesMax) return `lag ${lag} bytes exceeds lagBytesMax`;
  }
  return null;
}

/**
 * Whether this node's switchovers fence by a clean stop: with three or more nodes. The old primary is
 * stopped after the handover anyway (to rejoin), and a clean stop writes one last record, the shutdown
 * checkpoint, which its walsenders send to every standby still connected. Stopped after the final LSN
 * was read, that record reached the other standbys past the successor's fork, and they could not
 * follow it without a rewind. Stopped as the fence, the record is in the final LSN: the successor
 * replays it before it promotes, and every standby's WAL ends where the new timeline forks. With two
 * nodes the only standby is the successor; the fence stays as configured.
 */
export function switchoverStops(s: AgentState): boolean {
  return manyNodes(s);
}

/**
 * The fence of a switchover took: everything this primary will ever write is below `finalLsn`. A
 * stop that could not say where its WAL ends (it escalated to an immediate stop) aborts the
 * switchover: a position read before the stop is not final.
 */
export function fenceDoneForSwitchover(st: Step, finalLsn: Lsn | undefined): void {
  const s = st.s;
  const sw = s.switchover;
  if (sw === null || sw.step !== 'fencing') return;
  if (finalLsn === undefined && switchoverStops(s)) {
    st.set({ switchover: null });
    st.because(`switchover to ${sw.to} aborted: the stopped server's last WAL position is not known; resuming as primary`);
    st.notify('switchover', `switchover to ${sw.to} aborted: the stopped server's last WAL position is not known`);
    return;
  }
  st.set({ switchover: { step: 'catching-up', to: sw.to, startedAtMs: sw.startedAtMs, finalLsn: finalLsn ?? s.pg?.lsn ?? 0n } });
}

export function progressSwitchover(st: Step): void {
  const s = st.s;
  const sw = s.switchover;
  // Handing over waits for the quorum's answer even past the timeout: a handover the quorum may
  // have recorded cannot be taken back by resuming.
  if (sw === null || sw.step === 'handing-over') return;
  if (s.nowMs - sw.startedAtMs > s.settings.switchoverTimeoutMs) {
    st.set({ switchover: null });
    st.because(`switchover to ${sw.to} timed out; resuming as primary`);
    st.notify('switchover', `switchover to ${sw.to} aborted after ${s.settings.switchoverTimeoutMs} ms`);
    return;
  }
  if (sw.step !== 'catching-up') return;
  const peer = statusOf(s, sw.to);
  if (peer === null || peer.term !== s.durable.term || !peer.pg.inRecovery || peer.pg.replayLsn < sw.finalLsn) return;
  // The pipeline slot is free once the effect before (a VIP check, a sync setting) finished.
  if (s.inFlight !== null) return;
  // The standby has replayed everything we ever wrote: the quorum records the next term first.
  st.set({ switchover: { ...sw, step: 'handing-over' } });
  st.effect({ kind: 'quorum-handover', term: s.durable.term, to: sw.to });
  const term = s.durable.term + 1;
  st.because(`switchover: ${sw.to} replayed our final LSN; ${quorumName(s.settings.quorum.backend)} records term ${term} for it first`);
}

/** The quorum-handover effect finished: hand the next term over, or abort the switchover. */
export function onQuorumHandoverDone(st: Step, r: EffectResult): void {
  const s = st.s;
  const sw = s.switchover;
  // The switchover ended meanwhile (a newer term learned): nothing is handed over.
  if (sw === null || sw.step !== 'handing-over') return;
  const term = s.durable.term + 1;
  if (!r.ok) {
    // As a switchover that timed out: the quorum still names us, so we resume; the fence stays until
    // a valid lease (the renewals start again) lets us unfence.
    st.set({ switchover: null });
    st.because(`switchover to ${sw.to} aborted: ${quorumName(s.settings.quorum.backend)} did not record term ${term}: ${r.detail}; resuming as primary`);
    st.notify('switchover', `switchover to ${sw.to} aborted: the handover of term ${term} was not recorded: ${r.detail}`);
    return;
  }
  // Old primary + new primary form the majority for the next term; the witness learns it from their
  // statuses (a lease request teaches no term), etcd has recorded it.
  enterTerm(st, { term, primaryOfTerm: sw.to });
  const msg: Handover = {
    ...st.envelope(), kind: 'handover', to: sw.to, finalLsn: sw.finalLsn, timeline: s.pg?.timeline ?? 0,
  };
  st.send(sw.to, msg);
  st.notify('switchover', `handed term ${term} over to ${sw.to} at ${sw.finalLsn}`);
  st.because(`switchover: handing over term ${term} to ${sw.to}`);
}
