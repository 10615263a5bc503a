// What `pgvip status` and `pgvip history` print for people. Scripts use --json instead: these
// layouts may change, the JSON documents do not.
import type { PgvipEvent } from '../events.js';
import type { ClusterView, NodeView } from './api.js';
import { describeClaim } from '../etcd-events.js';
import type { EtcdQuorumView, SyncRecordView } from '../view.js';
import { cleanStrings } from '@pgvip/shared/text';
import { banner, formatBytes, formatDurationMs, formatTime, paint, table, type Style } from './format.js';

/** What the node is doing, from the two signals the witness has: its agent and its PostgreSQL. */
export function nodeState(n: NodeView): string {
  const state = connectionState(n);
  return n.pendingRestart === true ? `${state}, pending restart` : state;
}

function connectionState(n: NodeView): string {
  if (n.restarting && n.reachable) return 'restarting (planned)';
  if (n.withdrawn === true) return n.reachable ? 'withdrawn (election)' : 'unreachable, withdrawn';
  if (!n.reachable) return n.pgReachable === true ? 'agent down, pg up' : 'unreachable';
  if (n.pgReachable === false) return 'postgres down';
  if (n.streaming === true) return 'streaming';
  if (n.streaming === false && n.role !== 'primary') return 'not streaming';
  if (n.role === null) return 'no status yet';
  return 'running';
}

/** Whether the node could be promoted now, and if not, why (the witness's promotionBlocker). */
export function promotion(view: ClusterView, n: NodeView): string {
  if (n.node === view.primary) return '-';
  if (n.noFailover === true) return 'never (noFailover)';
  return n.promotionBlocker === null ? 'eligible' : `blocked: ${n.promotionBlocker}`;
}

// Everything printed below comes from the witness, and event details quote webhook answers and
// hooks' stderr: each string is made plain text (cleanStrings) before it reaches the terminal, so an
// escape sequence recorded by an older witness or slipped in by anything at the URL cannot clear
// the operator's screen or retitle the window. Only our own colours (paint) are added afterwards.

export function renderCluster(untrusted: ClusterView, style: Style, eventsShown = 5): string {
  const view = cleanStrings(untrusted);
  const out: string[] = [];
  if (view.maintenance) {
    out.push(
      banner(style, [
        `MAINTENANCE MODE: automatic failover is PAUSED for cluster ${view.cluster}`,
        'a failed primary will NOT be replaced until you run:',
        `  pgvip maintenance off --cluster ${view.cluster}`,
      ], 'warning'),
    );
  }
  if (view.primary === null) {
    out.push(banner(style, [`NO PRIMARY: cluster ${view.cluster} has no node holding write authority (term ${view.term})`], 'alarm'));
  }
  // More than two nodes (etcd): also each node's WAL position, sync membership and priority. Two
  // nodes keep the table they always had.
  const many = view.nodes.length > 2;
  const headers = many
    ? ['VIP', 'Node', 'Role', 'Term', 'Lease', 'LSN', 'Lag', 'TL', 'Sync', 'Prio', 'State', 'Promotion', 'Last seen']
    : ['VIP', 'Node', 'Role', 'Term', 'Lease', 'Lag', 'TL', 'State', 'Promotion', 'Last seen'];
  const rows = view.nodes.map((n) => {
    const cells = [
      n.node === view.primary ? '*' : '',
      n.node,
      n.role ?? 'unknown',
      n.term === null ? '-' : String(n.term),
      formatDurationMs(n.leaseRemainingMs),
      formatBytes(n.lagBytes),
      n.timeline === null ? '-' : String(n.timeline),
      nodeState(n),
      promotion(view, n),
      n.lastSeenMsAgo === null ? 'never' : `${formatDurationMs(n.lastSeenMsAgo)} ago`,
    ];
    if (!many) return cells;
    const [vip, node, role, term, lease, lag, tl, ...rest] = cells;
    return [vip!, node!, role!, term!, lease!, n.lsn ?? '-', lag!, tl!, syncCell(view, n), String(n.priority ?? 0), ...rest];
  });
  const title = `Cluster: ${view.cluster} (term ${view.term}${view.maintenance ? ', MAINTENANCE' : ''})`;
  out.push(table(headers, rows, title));
  const facts = [
    `* holds the VIP ${view.vip.address} (${view.vip.mode})${view.primary === null ? ': nobody, while there is no primary' : `: ${view.primary}`}`,
    many && view.quorum?.sync !== undefined ? syncRecordFact(view.quorum.sync)
      : view.syncEligible === null
        ? 'sync standby: none (async replication, or sync degraded: no standby is known to hold every acknowledged write)'
        : `sync standby: ${view.syncEligible} (holds every acknowledged write)`,
  ];
  const positions = view.quorum?.positions ?? [];
  if (positions.length > 0) {
    facts.push(paint(style, ['bold'], `election under way: final positions ${positions.map((p) => `${p.node} ${p.flushLsn} (timeline ${p.timeline}${p.eligible ? '' : ', not eligible'})`).join(', ')}`));
  }
  if (view.switchover !== null) facts.push(paint(style, ['bold'], `switchover to ${view.switchover.to} pending, due ${view.switchover.dueInMs <= 0 ? 'now' : `in ${formatDurationMs(view.switchover.dueInMs)}`}`));
  if (view.restart !== null && view.restart !== undefined) {
    const r = view.restart;
    facts.push(paint(style, ['bold'], `planned restart of ${r.node} ${r.accepted ? 'running' : 'requested'}: failure checks held for at most ${formatDurationMs(r.leftMs)} more`));
  }
  if (view.promiseRemainingMs > 0) facts.push(`witness lease promise: ${formatDurationMs(view.promiseRemainingMs)} left`);
  if (view.quorum !== undefined) facts.push(...etcdFacts(view.quorum, style));
  out.push(facts.join('\n'));
  const latest = view.events.slice(0, eventsShown);
  if (latest.length > 0) {
    out.push(`latest events (newest first):\n${latest.map((e) => `  ${formatTime(e.at)}  ${e.type}${e.node === null ? '' : ` ${e.node}`}  term ${e.term}: ${e.detail}`).join('\n')}`);
  }
  return out.join('\n');
}

/**
 * The Sync column: a member of the primary's synchronous setting in force (the node's agent says so),
 * else of the sync record; a noFailover node is always async; '-' for the primary, or when nobody says.
 */
function syncCell(view: ClusterView, n: NodeView): string {
  if (n.node === view.primary) return '-';
  if (n.noFailover === true) return 'async';
  const record = view.quorum?.sync;
  const inRecord = record === undefined || record === null ? null : record.k > 0 && record.members.includes(n.node);
  if (n.syncMember === true || inRecord === true) return 'member';
  if (n.syncMember === false || inRecord === false) return 'async';
  return '-';
}

function syncRecordFact(sync: SyncRecordView | null): string {
  if (sync === null) return 'sync record: none on etcd yet';
  if (sync.k === 0) return `sync record: ${describeClaim(sync)} (term ${sync.term}): no standby is known to hold every acknowledged write, so no automatic failover`;
  return `sync record: ${describeClaim(sync)} (term ${sync.term}): every acknowledged write is on at least ${sync.k} of them`;
}

/** What the witness sees of a cluster's quorum on etcd: the backend, the leader key, etcd's members. */
function etcdFacts(q: EtcdQuorumView, style: Style): string[] {
  const facts: string[] = [];
  const ago = q.lastReadMsAgo === null ? 'never read' : `last read ${formatDurationMs(q.lastReadMsAgo)} ago`;
  facts.push(q.reachable
    ? `quorum: etcd (the witness observes; ${ago})`
    : paint(style, ['bold'], `quorum: etcd UNREACHABLE from this witness (${q.why ?? 'no answer'}; ${ago}): the status above is etcd's last answer`));
  const k = q.leaderKey;
  facts.push(k === null
    ? 'leader key: none (no primary holds an etcd lease now)'
    : `leader key: ${k.node}, term ${k.term}, lease TTL ${k.leaseTtlS === null ? 'unknown' : `${k.leaseTtlS} s`}`);
  if (q.members.length > 0) {
    const members = q.members.map((m) => m.ok
      ? `${m.endpoint} ok${m.leader ? ' (leader)' : ''}${m.rttMs === null ? '' : ` ${m.rttMs} ms`}`
      : `${m.endpoint} DOWN (${m.why ?? 'no answer'})`);
    facts.push(`etcd members: ${members.join('; ')}`);
  }
  for (const b of q.badKeys) facts.push(paint(style, ['bold'], `etcd key ${b.key} holds a value pgvip did not write (${b.problem}): look at it`));
  return facts;
}

export function renderHistory(untrustedCluster: string, untrusted: readonly PgvipEvent[], style: Style): string {
  const cluster = cleanStrings(untrustedCluster);
  const events = cleanStrings(untrusted);
  if (events.length === 0) return `no events recorded for cluster ${cluster}`;
  const rows = events.map((e) => [formatTime(e.at), String(e.id), e.type, e.node ?? '-', String(e.term), e.detail]);
  return `${paint(style, ['bold'], `History of cluster ${cluster}, newest first`)}\n${table(['Time', 'Id', 'Event', 'Node', 'Term', 'Detail'], rows)}`;
}
