// Polls the two nodes of one cluster every heartbeat: the agent's signed GET /v1/status and, in
// parallel, a direct probe of the node's PostgreSQL port (pg-probe.ts), both bounded by
// requestTimeoutMs. Each result becomes one `poll` input of the cluster's runner.
//
// Polls of one node never overlap: requestTimeoutMs < heartbeatMs (the config enforces it), so a
// poll normally ends before the next is due, and if one has not (the event loop stalled), that
// heartbeat's poll is skipped rather than stacked. The schedule is a fixed grid on the monotonic
// clock, so timer lateness does not accumulate into drift.
import type { Logger } from 'pino';
import type { AgentStatus, NodeId, PeerClient } from '@pgvip/shared';
import type { Clock } from './clock.js';
import type { WitnessMetrics } from './metrics.js';
import { probePostgres } from './pg-probe.js';

export interface PolledNode {
  readonly id: NodeId;
  readonly postgres: { readonly host: string; readonly port: number };
}

export interface PollerDeps {
  readonly cluster: string;
  readonly nodes: readonly PolledNode[];
  readonly heartbeatMs: number;
  readonly timeoutMs: number;
  readonly peers: PeerClient;
  /** Where each poll result goes (the cluster runner). */
  onPoll(node: NodeId, status: AgentStatus | null, pgReachable: boolean): void;
  readonly clock: Clock;
  readonly metrics: WitnessMetrics;
  readonly log: Logger;
  /** Delay of the first poll, to spread many clusters' polls over the heartbeat. */
  readonly offsetMs?: number;
  /** Replaceable for tests; defaults to the CancelRequest probe. */
  readonly probe?: (host: string, port: number, timeoutMs: number) => Promise<boolean>;
}

export interface Poller {
  start(): void;
  /** Stops scheduling and waits for polls in flight (each ends within the timeout). */
  stop(): Promise<void>;
}

export function createPoller(d: PollerDeps): Poller {
  const probe = d.probe ?? probePostgres;
  let stopped = true;
  const timers = new Set<NodeJS.Timeout>();
  const inFlight = new Map<NodeId, Promise<void>>();
  // Last reachability per node, so transitions are logged once instead of every heartbeat.
  const lastUp = new Map<NodeId, { agent: boolean; pg: boolean }>();

  async function fetchStatus(node: NodeId, log: Logger): Promise<{ status: AgentStatus | null; why: string | null }> {
    try {
      const status = await d.peers.status(node);
      // The transport proved the reply is signed by `node`; the body must speak for it too.
      if (status.cluster !== d.cluster || status.from !== node) {
        log.warn({ reportedCluster: status.cluster, reportedFrom: status.from }, 'status speaks for another node or cluster; counted as unreachable');
        return { status: null, why: `status claims to be ${status.from} of ${status.cluster}` };
      }
      return { status, why: null };
    } catch (e) {
      return { status: null, why: (e as Error).message };
    }
  }

  const logs = new Map(d.nodes.map((n) => [n.id, d.log.child({ node: n.id })]));
  const lastStartMs = new Map<NodeId, number>();

  async function pollOnce(node: PolledNode): Promise<void> {
    const log = logs.get(node.id) ?? d.log;
    const started = d.clock.monotonicMs();
    // A poll that starts more than 1.5 heartbeats after the previous one means the witness fell
    // behind (a stalled event loop, or a skipped slot): failure detection is slower by as much.
    const last = lastStartMs.get(node.id);
    lastStartMs.set(node.id, started);
    if (last !== undefined && started - last > 1.5 * d.heartbeatMs) d.metrics.missedHeartbeat(d.cluster, node.id);
    const [{ status, why }, pgReachable] = await Promise.all([fetchStatus(node.id, log), probe(node.postgres.host, node.postgres.port, d.timeoutMs)]);
    d.metrics.pollObserved((d.clock.monotonicMs() - started) / 1000);
    const prev = lastUp.get(node.id);
    const agent = status !== null;
    if (prev === undefined || prev.agent !== agent || prev.pg !== pgReachable) {
      const fields = { agentReachable: agent, pgReachable, ...(why === null ? {} : { why }) };
      const down = [...(agent ? [] : ['agent unreachable']), ...(pgReachable ? [] : ['postgresql unreachable'])];
      if (down.length === 0) log.info(fields, `${node.id}: agent and postgresql reachable`);
      else log.warn(fields, `${node.id}: ${down.join(', ')}`);
      lastUp.set(node.id, { agent, pg: pgReachable });
    }
    if (!stopped) d.onPoll(node.id, status, pgReachable);
  }

  function schedule(node: PolledNode, dueMs: number): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (stopped) return;
      if (inFlight.has(node.id)) {
        d.log.debug({ node: node.id }, 'previous poll still running; skipping this heartbeat');
      } else {
        const p = pollOnce(node)
          .catch((e: unknown) => d.log.error({ err: e, node: node.id }, 'poll failed'))
          .finally(() => inFlight.delete(node.id));
        inFlight.set(node.id, p);
      }
      let next = dueMs + d.heartbeatMs;
      const now = d.clock.monotonicMs();
      // After a stall, skip the slots already missed instead of firing them back to back.
      while (next <= now) next += d.heartbeatMs;
      schedule(node, next);
    }, Math.max(0, dueMs - d.clock.monotonicMs()));
    timers.add(timer);
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      const first = d.clock.monotonicMs() + (d.offsetMs ?? 0);
      for (const node of d.nodes) schedule(node, first);
    },
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.all([...inFlight.values()]);
    },
  };
}
