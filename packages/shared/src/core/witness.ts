// The decision core of the witness, for one cluster: the tie-breaking third vote. It grants leases
// to the primary of the current term, votes for a standby only when it too has seen the primary fail
// and its own promise has run out, and arbitrates the sync standby's eligibility. Pure: time comes
// in as `nowMs` on the witness's monotonic clock.
//
// This file is the witness's loop (docs/design.md, The decision loop); the parts live in
// core/witness/: watch.ts (polls, failures, what operators hear), requests.ts (leases, releases,
// sync), vote.ts, operator.ts, and term.ts (the one way into a term).

import { assumedPromise } from './grantor.js';
import type { NodeId } from './messages.js';
import { onOperator, maybeSendSwitchover, onReply } from './witness/operator.js';
import { maybeSendRestart } from './witness/restart.js';
import { onRequest } from './witness/requests.js';
import {
  Step, type NodeView, type WitnessDurable, type WitnessInput, type WitnessOutput, type WitnessSettings,
  type WitnessState,
} from './witness/state.js';
import { onPoll, watchForBlockedFailover } from './witness/watch.js';

export type {
  BlockedWatch, LastFailover, NodeView, OperatorCommand, PlannedRestart, PlannedSwitchover, WitnessDurable,
  WitnessInput, WitnessOutput, WitnessSettings, WitnessState,
} from './witness/state.js';
export { initialWitnessDurable } from './witness/state.js';
export { primaryFailed } from './witness/watch.js';

export function bootWitness(settings: WitnessSettings, durable: WitnessDurable, nowMs: number): WitnessState {
  const views: Record<NodeId, NodeView> = {};
  for (const n of settings.nodes) {
    views[n] = {
      status: null, pgReachable: false, failedChecks: 0, lastSeenAtMs: null, missedPolls: 0, reportedDown: false,
      rejoinFailedTerm: null, rejoinedTerm: null,
    };
  }
  return {
    settings,
    durable,
    bootAtMs: nowMs,
    nowMs,
    // I6: promises made before a restart are unknown, so assume a full one to the current primary.
    promise: assumedPromise(durable, settings.self, nowMs, settings.timings),
    releasedTerm: null,
    primaryReport: null,
    views,
    switchover: null,
    blocked: { primaryFailedSinceMs: null, notifiedTerm: null },
  };
}

export function stepWitness(state: WitnessState, input: WitnessInput): WitnessOutput {
  const st = new Step({ ...state, nowMs: Math.max(state.nowMs, input.nowMs) });
  switch (input.kind) {
    case 'poll':
      onPoll(st, input.node, input.status, input.pgReachable);
      watchForBlockedFailover(st);
      maybeSendSwitchover(st);
      maybeSendRestart(st);
      return st.output(`polled ${input.node}`);
    case 'request':
      onRequest(st, input.msg, input.peerLeaseValidMs);
      return st.output(`answered ${input.msg.kind} from ${input.msg.from}`);
    case 'reply':
      onReply(st, input.msg, input.inReplyTo);
      return st.output(`noted ${input.msg.kind} from ${input.msg.from}`);
    case 'operator':
      onOperator(st, input.command);
      return st.output(`operator ${input.command.kind}`);
  }
}

/** A compact view for the operator API and dashboard. */
export function witnessSummary(s: WitnessState) {
  return {
    cluster: s.settings.cluster,
    term: s.durable.term,
    primary: s.durable.primaryOfTerm,
    syncEligible: s.durable.syncEligible,
    maintenance: s.durable.maintenance,
    promiseRemainingMs: s.promise === null ? 0 : Math.max(0, s.promise.untilMs - s.nowMs),
    nodes: s.settings.nodes.map((n) => ({ node: n, ...s.views[n] })),
  };
}
