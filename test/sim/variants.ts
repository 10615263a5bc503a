// Deliberately broken variants of the core, planted by wrapping the real step functions. The teeth
// tests assert that the simulator catches each one; if it stopped doing so, its checks would be blind.
import { type AgentState, type WitnessState } from '@pgvip/shared/core';
import { realCores, type Cores, type RunOptions } from './world.js';

/** Bug: the primary counts its lease from when the grant ARRIVED instead of when it sent the request. */
export const leaseFromReplyTime: Cores = {
  ...realCores,
  stepAgent: (s, input) => {
    if (input.kind === 'reply' && input.msg.kind === 'lease-reply') {
      const seq = input.msg.seq;
      const sends = s.lease.sends.map((x) => (x.seq === seq ? { ...x, sentAtMs: input.nowMs } : x));
      return realCores.stepAgent({ ...s, lease: { ...s.lease, sends } }, input);
    }
    return realCores.stepAgent(s, input);
  },
};

/** Bug: a restarted witness forgets the lease it promised and votes at once. */
export const witnessForgetsPromise: Cores = {
  ...realCores,
  bootWitness: (settings, durable, nowMs): WitnessState => ({
    ...realCores.bootWitness(settings, durable, nowMs),
    promise: null,
    bootAtMs: -Infinity,
  }),
};

/** Bug: eligibility is ignored — the standby campaigns and the witness votes even when it lags. */
export const ignoresEligibility: Cores = {
  ...realCores,
  stepAgent: (s: AgentState, input) => {
    const report = s.primaryReport ??
      { term: s.durable.term, lsn: 0n, timeline: s.pg?.timeline ?? 1, atMs: s.nowMs, syncStandby: null };
    const lying: AgentState = {
      ...s,
      lastStreamingAtMs: s.nowMs,
      primaryReport: { ...report, timeline: s.pg?.timeline ?? report.timeline, syncStandby: s.settings.self, lsn: 0n },
    };
    return realCores.stepAgent(lying, input);
  },
  stepWitness: (s, input) => {
    if (input.kind === 'request' && input.msg.kind === 'vote-request') {
      const lie = { ...s.durable, syncEligible: input.msg.from };
      const out = realCores.stepWitness({ ...s, durable: lie, primaryReport: null }, input);
      // The lie is only believed, never written: a refused vote leaves the durable state as it was.
      return out.state.durable === lie ? { ...out, state: { ...out.state, durable: s.durable } } : out;
    }
    return realCores.stepWitness(s, input);
  },
};

/**
 * Bug: a grantor believes a lease request's term, as releases before the term rules did: it adopts a
 * term no vote created (a key holder's forged request), and with it the sender as its primary.
 */
export const adoptsLeaseRequestTerm: Cores = {
  ...realCores,
  stepAgent: (s, input) => {
    if (input.kind !== 'request' || input.msg.kind !== 'lease-request' || input.msg.term <= s.durable.term) return realCores.stepAgent(s, input);
    return adoptFirst(
      realCores.stepAgent({ ...s, durable: { term: input.msg.term, primaryOfTerm: input.msg.from } }, input),
    );
  },
  stepWitness: (s, input) => {
    if (input.kind !== 'request' || input.msg.kind !== 'lease-request' || input.msg.term <= s.durable.term) return realCores.stepWitness(s, input);
    const durable = { ...s.durable, term: input.msg.term, primaryOfTerm: input.msg.from, syncEligible: null };
    return adoptFirst(realCores.stepWitness({ ...s, durable }, input));
  },
};

/** The adopted term goes to disk first, as the real core's adoption would. */
function adoptFirst<O extends { readonly state: { readonly durable: D }; readonly persist: D | null }, D>(out: O): O {
  return out.persist !== null ? out : { ...out, persist: out.state.durable };
}

/**
 * Bug: a won vote leaves the campaign standing, so the new primary still counts as a candidate (a
 * piece of per-term state one path into a term forgot). Only the core's state invariants see it.
 */
export const keepsCampaignAfterWin: Cores = {
  ...realCores,
  stepAgent: (s, input) => {
    const out = realCores.stepAgent(s, input);
    const won =
      s.campaign !== null &&
      out.state.campaign === null &&
      out.state.durable.primaryOfTerm === s.settings.self &&
      out.state.durable.term === s.campaign.term;
    return won ? { ...out, state: { ...out.state, campaign: s.campaign } } : out;
  },
};

/**
 * Bug (etcd): the agent's shell on etcd counts a renewal's validity from when the keepalive's ANSWER
 * arrived instead of from the lease request's send: the granted request's send time is moved to the
 * answer's arrival before the core takes the grant. etcd restarts the lease's countdown when it
 * receives the keepalive, so late answers make the holder trust its key after etcd deleted it.
 */
export const etcdValidityFromKeepAliveReply: RunOptions = { etcdBug: 'validity-from-keepalive-reply' };

/**
 * Bug (etcd): a restarted agent does not read etcd's term record before its first step (runner.ts,
 * #startAfterQuorumTerm, is left out). One that died after its switchover's handover txn committed
 * and before it persisted the next term starts in the old term, and its standby (still in it too)
 * may grant it a lease before etcd's refusal teaches it the new one.
 */
export const etcdNoTermReadAtStart: RunOptions = { etcdBug: 'no-term-read-at-start' };


/**
 * Bug (etcd): the agent's etcd route gives the core an answer however late it comes (agent-quorum.ts,
 * #inTime, without its bound: the route's clock stands still). A vote reply to an earlier vote request,
 * arriving after the core asked again, counts from the later send while etcd's lease on the leader key
 * runs from the earlier one.
 */
export const etcdAnswerAfterRequestTimeout: RunOptions = { etcdBug: 'answer-after-request-timeout' };

/**
 * Bug (three nodes, etcd): a standby outside the synchronous quorum is promoted. The election reads
 * the candidate into the sync record in place of a member (nodes.ts, #readsItselfIntoRecord), so a
 * standby the primary dropped from the record (it stopped streaming) counts its own final position
 * as the n − k + 1 it needs, and wins while the member that holds the acknowledged writes is silent
 * (docs/design.md, "More than one standby": the planted bug issue 17 asks the simulator to catch).
 */
export const etcdCandidateOutsideRecord: RunOptions = { etcdBug: 'candidate-in-record' };

/**
 * Bug (three nodes, etcd): a standby withdraws without asking etcd first, as before review-17 F9's
 * fix: its shell answers the question before withdrawing (is the leader key gone?) with yes at once
 * (etcd-shell.ts). During an etcd outage a short cut between the primary and a standby then fences
 * the primary until etcd answers again: the withdrawn standby grants nothing and cannot take its
 * position back.
 */
export const etcdWithdrawWithoutAsking: RunOptions = { etcdBug: 'withdraw-without-asking' };

/**
 * Bug (etcd): the agent's PostgreSQL shell ends R2's catch-up at once (its L is what the members
 * already flushed, not pg_current_wal_lsn()), so the primary writes a stronger sync record, e.g. ANY 1
 * of the one standby left after another was lost, before that standby holds what the lost one
 * acknowledged (docs/design.md, "More than one standby": R2).
 */
export const pgCatchUpAtOnce: RunOptions = { pgBug: 'catch-up-at-once' };
