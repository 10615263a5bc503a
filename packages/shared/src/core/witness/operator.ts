// Operators' commands: maintenance, a planned restart (witness/restart.ts), a planned switchover (sent
// to the primary, resent until it answers) and a forced failover (the witness's own vote for a term,
// accepting data loss).

import type { PeerReply, PeerRequest } from '../messages.js';
import { termAfter, termBoundReached } from '../terms.js';
import type { OperatorCommand, Step } from './state.js';
import { onRestartReply, requestRestart } from './restart.js';
import { enterTerm } from './term.js';
import { otherNode } from './watch.js';

export function onOperator(st: Step, c: OperatorCommand): void {
  const s = st.s;
  const d = s.durable;
  const verdict = (ok: boolean, message: string) => {
    st.verdict = { ok, message };
    st.because(message);
  };
  switch (c.kind) {
    case 'maintenance':
      if (d.maintenance !== c.on) st.persist({ ...d, maintenance: c.on });
      st.notify('maintenance', `maintenance ${c.on ? 'on' : 'off'} for ${s.settings.cluster} by ${c.by}`);
      return verdict(true, `maintenance ${c.on ? 'on: automatic failover paused' : 'off: automatic failover active'}`);
    case 'restart':
      return requestRestart(st, c.node, c.timeoutMs, c.by, verdict);
    case 'switchover': {
      const primary = d.primaryOfTerm;
      if (primary === null) return verdict(false, 'no primary known; nothing to switch over from');
      const to = c.to ?? otherNode(s, primary);
      if (to === primary) return verdict(false, `${to} is already the primary`);
      if (!s.settings.nodes.includes(to)) return verdict(false, `${to} is not a node of ${s.settings.cluster}`);
      const view = s.views[to];
      const blocker = view?.status?.promotionBlocker;
      if (view?.status === null || view?.status === undefined) return verdict(false, `${to} is unreachable`);
      if (blocker !== null && blocker !== undefined) return verdict(false, `${to} is not ready: ${blocker}`);
      st.set({ switchover: { to, atMs: s.nowMs + Math.max(0, c.delayMs), sentAtMs: null } });
      maybeSendSwitchover(st);
      const when = c.delayMs > 0 ? `scheduled in ${Math.round(c.delayMs / 1000)} s` : 'requested';
      return verdict(true, `switchover to ${to} ${when}`);
    }
    case 'failover': {
      if (!c.acceptDataLoss) return verdict(false, 'a forced failover needs --accept-data-loss');
      const primary = d.primaryOfTerm;
      const to = c.to ?? (primary === null ? null : otherNode(s, primary));
      if (to === null || !s.settings.nodes.includes(to)) return verdict(false, 'name the node to promote with --to');
      const term = termAfter(d.term);
      if (term === null) return verdict(false, termBoundReached);
      enterTerm(st, term, to, { for: to, t: s.settings.timings });
      st.send(to, { ...st.envelope(), kind: 'manual-promote', acceptDataLoss: true, requestedBy: c.by });
      st.notify('manual-failover', `${c.by} forced ${to} to primary in term ${term}, accepting data loss`);
      return verdict(true, `forcing ${to} to primary in term ${term} (data loss accepted)`);
    }
  }
}

/** Send a planned switchover to the primary once it is due, and again every two heartbeats. */
export function maybeSendSwitchover(st: Step): void {
  const s = st.s;
  const sw = s.switchover;
  const primary = s.durable.primaryOfTerm;
  if (sw === null || primary === null || s.nowMs < sw.atMs) return;
  if (sw.sentAtMs !== null && s.nowMs - sw.sentAtMs < 2 * s.settings.timings.heartbeatMs) return;
  st.send(primary, { ...st.envelope(), kind: 'switchover-request', to: sw.to });
  st.set({ switchover: { ...sw, sentAtMs: s.nowMs } });
}

/** Only the answer to the switchover request settles a pending switchover (not, say, a manual-promote ack). */
export function onReply(st: Step, msg: PeerReply, inReplyTo: PeerRequest['kind']): void {
  if (inReplyTo === 'restart-request') return onRestartReply(st, msg);
  const sw = st.s.switchover;
  if (inReplyTo !== 'switchover-request' || msg.kind !== 'ack' || sw === null || sw.sentAtMs === null) return;
  st.set({ switchover: null });
  const how = msg.accepted ? `started by ${msg.from}` : `refused by ${msg.from}: ${msg.reason}`;
  st.notify('switchover', `switchover to ${sw.to} ${how}`);
  st.because(`switchover ${msg.accepted ? 'started' : `refused: ${msg.reason}`}`);
}
