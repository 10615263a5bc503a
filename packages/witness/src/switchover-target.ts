// Which node a switchover without `--to` goes to, with more than two database nodes (docs/design.md,
// "More than one standby", Candidate choice): the first of the live standbys by the failover's own
// ranking (timeline, then WAL received, then priority, then the node id: compareCandidates). Pure
// over the nodes as the operator API shows them, so the witness that asks and the CLI that shows the
// choice before confirmation pick the same node from the same view.
import { compareCandidates, parseLsn, type NodeId } from '@pgvip/shared';
import type { NodeView } from './view.js';

export type Target =
  | { readonly ok: true; readonly node: NodeId; readonly view: NodeView }
  | { readonly ok: false; readonly why: string };

/** Why `n` cannot take a switchover now, or null. `primary`: the primary of the term. */
export function standbyProblem(n: NodeView, primary: NodeId | null): string | null {
  if (n.node === primary) return `${n.node} is the primary`;
  if (n.noFailover === true) return `${n.node} has noFailover`;
  if (!n.reachable) return `${n.node} is unreachable`;
  if (n.role !== 'standby') return `${n.node} is ${n.role ?? 'of unknown role'}`;
  if (n.withdrawn === true) return `${n.node} stopped its WAL receiver for an election`;
  if (n.promotionBlocker !== null) return `${n.node}: ${n.promotionBlocker}`;
  if (n.timeline === null || n.lsn === undefined || n.lsn === null) return `${n.node} has not said its WAL position`;
  return null;
}

interface Ready {
  readonly node: NodeId;
  readonly view: NodeView;
  readonly position: { readonly node: NodeId; readonly timeline: number; readonly flushLsn: bigint };
  readonly priority: number;
}

/** The best live standby for a switchover, or why there is none (each node's reason). */
export function bestStandby(nodes: readonly NodeView[], primary: NodeId | null): Target {
  const ready: Ready[] = [];
  const why: string[] = [];
  for (const n of nodes) {
    if (n.node === primary) continue;
    const problem = standbyProblem(n, primary);
    const lsn = problem === null ? lsnOf(n.lsn) : null;
    if (problem !== null || lsn === null) {
      why.push(problem ?? `${n.node} said a WAL position pgvip cannot read`);
      continue;
    }
    const position = { node: n.node, timeline: n.timeline ?? 0, flushLsn: lsn };
    ready.push({ node: n.node, view: n, position, priority: n.priority ?? 0 });
  }
  ready.sort(compareCandidates);
  const best = ready[0];
  if (best === undefined) return { ok: false, why: `no standby can take a switchover now (${why.join('; ') || 'the cluster has no other node'})` };
  return { ok: true, node: best.node, view: best.view };
}

/** What made `n` the choice, for the confirmation and the answer: timeline, WAL position, priority. */
export function describeCandidate(n: NodeView): string {
  return `timeline ${n.timeline ?? '?'}, WAL received ${n.lsn ?? '?'}, priority ${n.priority ?? 0}`;
}

function lsnOf(text: string | null | undefined): bigint | null {
  if (text === null || text === undefined) return null;
  try {
    return parseLsn(text);
  } catch {
    return null;
  }
}
