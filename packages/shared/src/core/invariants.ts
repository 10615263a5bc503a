// Invariants of one node's state, checked by the simulator after every step of every node (as
// Patroni's quorum state machine checks its own). The simulator's observer checks the cluster-wide
// properties (I1–I7, docs/design.md, Safety invariants) from outside; these say what one state may
// never look like, so a reshaped core that lets an impossible combination through fails where it
// happens, not three steps later as a split brain. Each returns the broken rules as sentences; []
// when all hold.

import type { AgentOutput, AgentState } from './agent.js';
import { isTermInRange } from './terms.js';
import { isVipEffect } from './agent/vip.js';
import type { WitnessOutput, WitnessState } from './witness.js';

export function agentInvariantViolations(s: AgentState): string[] {
  const out: string[] = [];
  const d = s.durable;
  const self = s.settings.self;
  if (!isTermInRange(d.term)) out.push(`durable term ${d.term} is out of range`);
  const held = s.lease.held;
  const release = s.lease.release;
  const released = (release.phase === 'released' && release.term === d.term) || s.releasedTerm === d.term;
  if (held !== null && held.term > d.term) out.push(`holds a lease for term ${held.term}, above its durable term ${d.term}`);
  if (held !== null && held.term === d.term && d.primaryOfTerm !== self && !released) {
    out.push(`holds a lease for term ${d.term} whose primary is ${d.primaryOfTerm ?? 'unknown'}`);
  }
  if (release.phase !== 'none' && d.primaryOfTerm !== self) {
    out.push(`its release of the lease is ${release.phase} but it is not primary of term ${d.term}`);
  }
  if (release.phase === 'released' && release.term !== d.term) {
    out.push(`released its lease for term ${release.term}, not its durable term ${d.term}`);
  }
  if (s.campaign !== null) {
    const c = s.campaign.term;
    if (d.primaryOfTerm === self) out.push(`campaigns for term ${c} while primary of term ${d.term}`);
    if (c !== d.term && c !== d.term + 1) out.push(`campaigns for term ${c}, neither its term ${d.term} nor the next`);
  }
  if (s.promise !== null && s.promise.term > d.term) {
    out.push(`promised a lease for term ${s.promise.term}, above its durable term ${d.term}`);
  }
  if (s.promise !== null && s.promise.holder === self) out.push('promised a lease to itself');
  if (s.releasedTerm !== null && s.releasedTerm > d.term) {
    out.push(`released term ${s.releasedTerm}, above its durable term ${d.term}`);
  }
  if (s.switchover !== null && d.primaryOfTerm !== self) {
    out.push(`runs a switchover to ${s.switchover.to} but is not primary of term ${d.term}`);
  }
  // A switchover hands over only what its quorum recorded: the handing-over step is its effect in flight.
  if (s.switchover?.step === 'handing-over' && s.inFlight?.kind !== 'quorum-handover') {
    out.push(`hands term ${d.term + 1} over to ${s.switchover.to} without a quorum-handover in flight`);
  }
  const forced = s.promotion.forcedTerm;
  if (forced !== null && forced > d.term) out.push(`forced promotion for term ${forced}, above its durable term ${d.term}`);
  if (s.fenceInFlight !== null && s.fenceInFlight.kind !== 'fence') out.push(`a ${s.fenceInFlight.kind} runs in the fence slot`);
  if (s.inFlight !== null && s.inFlight.kind === 'fence') out.push('a fence runs in the pipeline slot');
  // VIP effects run in their own slot, so no promotion, rejoin or sync step waits for one (agent/vip.ts).
  if (s.inFlight !== null && isVipEffect(s.inFlight.kind)) out.push(`a ${s.inFlight.kind} runs in the pipeline slot`);
  if (s.vipInFlight !== null && !isVipEffect(s.vipInFlight.kind)) out.push(`a ${s.vipInFlight.kind} runs in the VIP slot`);
  // Three or more nodes (agent/withdrawal.ts): a withdrawal belongs to a standby of its own term.
  const w = s.withdrawal;
  if (w !== null && d.primaryOfTerm === self) out.push(`withdrawn for an election while primary of term ${d.term}`);
  if (w !== null && w.term > d.term) out.push(`withdrawn in term ${w.term}, above its durable term ${d.term}`);
  return out;
}

/** Across one step: what the output may do given the state before it. */
export function agentStepViolations(before: AgentState, out: AgentOutput): string[] {
  const v = agentInvariantViolations(out.state);
  if (out.state.durable.term < before.durable.term) v.push(`term went down from ${before.durable.term} to ${out.state.durable.term}`);
  const changed = out.state.durable !== before.durable;
  const persisted = out.persist !== null;
  if (changed && !persisted) v.push('changed its durable state without persisting it');
  // The handover message only after the quorum recorded it (agent/switchover.ts).
  // A withdrawn standby's position is final and published: it grants no lease (docs/design.md, "More
  // than one standby"), and streams again only once no position of its term can be published.
  if (before.withdrawal !== null && out.state.durable.term === before.durable.term) {
    for (const r of out.replies) {
      if (r.msg.kind === 'lease-reply' && r.msg.granted) v.push(`granted ${r.to} a lease while withdrawn`);
    }
  }
  for (const e of out.effects) {
    const streams = e.effect.kind === 'follow' || e.effect.kind === 'resume-wal-receiver';
    if (streams && out.state.positionClearTerm !== out.state.durable.term) {
      v.push(`started ${e.effect.kind} in term ${out.state.durable.term} with a position of it perhaps still published`);
    }
  }
  const handover = out.sends.find((x) => x.msg.kind === 'handover');
  if (handover !== undefined && before.switchover?.step !== 'handing-over') {
    v.push(`sent a handover of term ${handover.msg.term} to ${handover.to} that its quorum had not recorded`);
  }
  return v;
}

export function witnessInvariantViolations(s: WitnessState): string[] {
  const out: string[] = [];
  const d = s.durable;
  if (!isTermInRange(d.term)) out.push(`durable term ${d.term} is out of range`);
  if (d.votedTerm > d.term) out.push(`voted in term ${d.votedTerm}, above its durable term ${d.term}`);
  if (d.votedTerm === d.term && d.votedTerm > 0 && d.primaryOfTerm !== d.votedFor) {
    out.push(`voted for ${d.votedFor ?? 'nobody'} in term ${d.term} but holds ${d.primaryOfTerm ?? 'nobody'} as its primary`);
  }
  if (s.promise !== null && s.promise.term > d.term) out.push(`promised a lease for term ${s.promise.term}, above its durable term ${d.term}`);
  if (s.releasedTerm !== null && s.releasedTerm > d.term) out.push(`released term ${s.releasedTerm}, above its durable term ${d.term}`);
  return out;
}

export function witnessStepViolations(before: WitnessState, out: WitnessOutput): string[] {
  const v = witnessInvariantViolations(out.state);
  if (out.state.durable.term < before.durable.term) v.push(`term went down from ${before.durable.term} to ${out.state.durable.term}`);
  if (out.state.durable.votedTerm < before.durable.votedTerm) v.push(`vote went down from term ${before.durable.votedTerm} to ${out.state.durable.votedTerm}`);
  if (out.state.durable !== before.durable && out.persist === null) v.push('changed its durable state without persisting it');
  if (before.settings.quorum === 'etcd') {
    // On etcd the witness observes: it never votes, grants a lease or agrees to a sync change.
    if (out.state.durable.votedTerm !== before.durable.votedTerm) v.push(`voted in term ${out.state.durable.votedTerm} on etcd`);
    for (const r of out.replies) {
      if ('granted' in r.msg && r.msg.granted) v.push(`granted ${r.msg.kind} to ${r.to} on etcd`);
    }
  }
  return v;
}
