// Deliberately broken variants of the core, planted by wrapping the real step functions. The teeth
// tests assert that the simulator catches each one; if it stopped doing so, its checks would be blind.
import { type AgentState, type WitnessState } from '@pgvip/shared/core';
import { realCores, type Cores } from './world.js';

/** Bug: the primary counts its lease from when the grant ARRIVED instead of when it sent the request. */
export const leaseFromReplyTime: Cores = {
  ...realCores,
  stepAgent: (s, input) => {
    if (input.kind === 'reply' && input.msg.kind === 'lease-reply') {
      const seq = input.msg.seq;
      const leaseSends = s.leaseSends.map((x) => (x.seq === seq ? { ...x, sentAtMs: input.nowMs } : x));
      return realCores.stepAgent({ ...s, leaseSends }, input);
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
    const report = s.primaryReport ?? { term: s.durable.term, lsn: 0n, timeline: s.pg?.timeline ?? 1, atMs: s.nowMs, syncStandby: null };
    const lying: AgentState = { ...s, lastStreamingAtMs: s.nowMs, primaryReport: { ...report, timeline: s.pg?.timeline ?? report.timeline, syncStandby: s.settings.self, lsn: 0n } };
    return realCores.stepAgent(lying, input);
  },
  stepWitness: (s, input) => {
    if (input.kind === 'request' && input.msg.kind === 'vote-request') {
      return realCores.stepWitness({ ...s, durable: { ...s.durable, syncEligible: input.msg.from }, primaryReport: null }, input);
    }
    return realCores.stepWitness(s, input);
  },
};
