// The witness's side of a planned restart (`pgvip restart <node>`, core/agent/restart.ts): it asks
// the node (once), and while the restart lasts it does not
// count the node's failed checks for as long as the node's agent says it is restarting. The hold is
// bounded twice: by the witness's own deadline and by the agent's (an agent past its deadline no
// longer says so). It decides nothing else: the primary's lease, renewed through the restart, is
// what keeps a vote from happening, as always. docs/design.md, Planned restarts.

import type { AgentStatus, NodeId, PeerReply } from '../messages.js';
import type { PlannedRestart, Step, WitnessState } from './state.js';

type Verdict = (ok: boolean, message: string) => void;

/** The operator's command: refused, or recorded and sent. */
export function requestRestart(st: Step, node: NodeId, timeoutMs: number, by: string, verdict: Verdict): void {
  const s = st.s;
  const d = s.durable;
  if (!s.settings.nodes.includes(node)) return verdict(false, `${node} is not a node of ${s.settings.cluster}`);
  if (!(timeoutMs > 0)) return verdict(false, 'the restart needs a timeout above 0 ms');
  if (d.primaryOfTerm === null) return verdict(false, 'no primary known yet; nothing is held for a restart before the cluster has one');
  const running = s.restart ?? null;
  if (running !== null && s.nowMs < running.untilMs) {
    return verdict(false, `a planned restart of ${running.node} is still running (${Math.ceil((running.untilMs - s.nowMs) / 1000)} s left)`);
  }
  if (s.switchover !== null) return verdict(false, 'a switchover is pending');
  const view = s.views[node];
  if (view?.status === null || view?.status === undefined) return verdict(false, `${node} is unreachable`);
  const restart: PlannedRestart = {
    node, term: d.term, timeoutMs, untilMs: s.nowMs + timeoutMs, sentAtMs: null, accepted: false,
    seenRestarting: false, by,
  };
  st.set({ restart });
  maybeSendRestart(st);
  const role = node === d.primaryOfTerm ? 'the primary' : 'the standby';
  return verdict(true, `planned restart of ${node} (${role}) requested; failure handling held for at most ${Math.round(timeoutMs / 1000)} s`);
}

/**
 * Send the restart request, once: the operator hears at once whether the node took it, and a
 * request that went unanswered never restarts a node later, behind a reported failure. (A request
 * that arrived but whose answer was lost still holds: the node says it is restarting.)
 */
export function maybeSendRestart(st: Step): void {
  const s = st.s;
  const r = s.restart ?? null;
  if (r === null || r.sentAtMs !== null || r.term !== s.durable.term || s.nowMs >= r.untilMs) return;
  // The node holds for what is left of the witness's deadline, so the two holds end together.
  const timeoutMs = Math.max(1, Math.round(r.untilMs - s.nowMs));
  st.send(r.node, { ...st.envelope(), kind: 'restart-request', to: r.node, timeoutMs });
  st.set({ restart: { ...r, sentAtMs: s.nowMs } });
}

/** The node's answer to the restart request. */
export function onRestartReply(st: Step, msg: PeerReply): void {
  const r = st.s.restart ?? null;
  if (msg.kind !== 'ack' || r === null || r.accepted || msg.from !== r.node) return;
  if (!msg.accepted) {
    st.set({ restart: null });
    st.notify('planned-restart', `${r.node} refused the planned restart asked for by ${r.by}: ${msg.reason}`);
    st.because(`planned restart of ${r.node} refused: ${msg.reason}`);
    return;
  }
  st.set({ restart: { ...r, accepted: true } });
  st.notify('planned-restart', `${r.node} is restarting postgresql (asked for by ${r.by}); failure handling held for at most ${Math.round(r.timeoutMs / 1000)} s`);
  st.because(`${r.node} accepted the planned restart`);
}

/** Whether a failed check of `node` with this status is held: a planned restart it says it runs. */
export function restartHoldsCheck(s: WitnessState, node: NodeId, status: AgentStatus | null): boolean {
  const r = s.restart ?? null;
  return r !== null && r.node === node && r.term === s.durable.term && s.nowMs < r.untilMs
    && status !== null && status.term === r.term && status.restarting === true;
}

/**
 * After each poll of the restarting node: the restart ends once the node, having been seen
 * restarting, is seen running without it; or at its deadline, or with its term.
 */
export function watchRestart(st: Step, node: NodeId, status: AgentStatus | null): void {
  const s = st.s;
  const r = s.restart ?? null;
  if (r === null || r.node !== node) return;
  const back = status !== null && status.restarting !== true && status.pg.running
    && (status.role === 'primary' || status.role === 'standby');
  if (r.term !== s.durable.term) {
    st.set({ restart: null });
    return;
  }
  if (status?.restarting === true && !r.seenRestarting) st.set({ restart: { ...r, seenRestarting: true } });
  if (r.accepted && r.seenRestarting && back) {
    st.set({ restart: null });
    st.notify('planned-restart', `${node} is back as ${status.role} after its planned restart`);
    st.because(`${node} finished its planned restart`);
    return;
  }
  if (s.nowMs >= r.untilMs) {
    st.set({ restart: null });
    if (back) {
      st.notify('planned-restart', `${node} is running as ${status.role} after its planned restart`);
    } else {
      st.notify('planned-restart', `the planned restart of ${node} did not finish within ${Math.round(r.timeoutMs / 1000)} s: it is handled as a failure from now on`);
    }
  }
}
