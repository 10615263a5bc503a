// Polls the two nodes of one cluster every heartbeat: the agent's signed GET /v1/status and, when it
// is needed, a direct probe of the node's PostgreSQL port (pg-probe.ts); the poll as a whole is
// bounded by requestTimeoutMs. Each result becomes one `poll` input of the cluster's runner.
//
// When the probe runs. The core reads the direct PostgreSQL signal only for a poll whose status
// failed (core/witness.ts `checkFailed`: an unreachable agent with a live PostgreSQL is an agent
// failure, not a database failure). So every poll whose status fails carries a probe made during
// that very poll, and a poll whose agent answers needs none:
//
//   - a node that looked unwell on its previous poll (agent unreachable, or PostgreSQL not
//     answering the probe) is probed in parallel with the status, with the full timeout;
//   - a healthy node's status request gets a head start of requestTimeoutMs/8 (50 ms by default;
//     a status on a healthy network takes a few). If it answers in time, no probe is made; if it
//     fails, or has not answered by then, the probe starts at once, with the time left until the
//     poll's deadline;
//   - a healthy node is still probed every PROBE_REFRESH_MS, so the view and the
//     pgvip_witness_postgres_reachable gauge show whether the witness can reach PostgreSQL directly
//     (the signal it will need the moment the agent goes quiet) before it is needed. Between
//     probes they show the latest probe's result.
//
// This replaced a probe on every poll, which opened and closed a TCP connection per node per
// heartbeat and cost the witness about a fifth of its CPU.
//
// Polls of one node never overlap: requestTimeoutMs < heartbeatMs (the config enforces it), so a
// poll normally ends before the next is due, and if one has not (the event loop stalled), that
// heartbeat's poll is skipped rather than stacked. The schedule is a fixed grid on the monotonic
// clock, so timer lateness does not accumulate into drift.
import type { Logger } from 'pino';
import type { AgentStatus, NodeId, PeerClient } from '@pgvip/shared';
import type { AgentEventsReader } from './agent-events.js';
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
  /**
   * Where each poll result goes (the cluster runner). `pgReachable` comes from a probe made during
   * this poll whenever `status` is null; otherwise it may be the latest earlier probe's result.
   */
  onPoll(node: NodeId, status: AgentStatus | null, pgReachable: boolean): void;
  readonly clock: Clock;
  readonly metrics: WitnessMetrics;
  readonly log: Logger;
  /** Delay of the first poll, to spread many clusters' polls over the heartbeat. */
  readonly offsetMs?: number;
  /** Replaceable for tests; defaults to the CancelRequest probe. */
  readonly probe?: (host: string, port: number, timeoutMs: number) => Promise<boolean>;
  /** Replaceable for tests; defaults to PROBE_REFRESH_MS. */
  readonly probeRefreshMs?: number;
  /** Pulls the agents' own events (protocol v2) after a status answered; stopped with the poller. */
  readonly events?: AgentEventsReader;
}

export interface Poller {
  start(): void;
  /** Stops scheduling and waits for polls in flight (each ends within the timeout). */
  stop(): Promise<void>;
}

/** How often a node whose agent answers is probed anyway, to keep its PostgreSQL reachability current. */
export const PROBE_REFRESH_MS = 10_000;

/** What the poller remembers of one node between polls. */
interface NodeMemory {
  readonly log: Logger;
  lastStartMs: number | null;
  /** The latest probe's result and when it was made; null before the first. */
  probe: { readonly reachable: boolean; readonly atMs: number } | null;
  /** Whether the agent answered the previous poll (null before the first). */
  agentUp: boolean | null;
  /** What was last logged about the node, so transitions are logged once instead of every heartbeat. */
  logged: { readonly agent: boolean; readonly pg: boolean } | null;
}

export function createPoller(d: PollerDeps): Poller {
  const probe = d.probe ?? probePostgres;
  // The status's head start before a healthy node's PostgreSQL is probed after all.
  const probeAfterMs = d.timeoutMs / 8;
  const probeRefreshMs = d.probeRefreshMs ?? PROBE_REFRESH_MS;
  let stopped = true;
  const timers = new Set<NodeJS.Timeout>();
  const inFlight = new Map<NodeId, Promise<void>>();
  const memory = new Map<NodeId, NodeMemory>(
    d.nodes.map((n) => [
      n.id,
      { log: d.log.child({ node: n.id }), lastStartMs: null, probe: null, agentUp: null, logged: null },
    ]),
  );

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

  async function pollOnce(node: PolledNode, m: NodeMemory): Promise<void> {
    const started = d.clock.monotonicMs();
    const deadlineMs = started + d.timeoutMs;
    // A poll that starts more than 1.5 heartbeats after the previous one means the witness fell
    // behind (a stalled event loop, or a skipped slot): failure detection is slower by as much.
    if (m.lastStartMs !== null && started - m.lastStartMs > 1.5 * d.heartbeatMs) {
      d.metrics.missedHeartbeat(d.cluster, node.id);
    }
    m.lastStartMs = started;

    // The probe of this poll, if one is made; it shares the poll's deadline with the status.
    const check: { probe: Promise<boolean> | null } = { probe: null };
    const startProbe = (): void => {
      check.probe ??= probe(node.postgres.host, node.postgres.port, Math.max(1, deadlineMs - d.clock.monotonicMs()));
    };
    const suspect = m.agentUp !== true || m.probe === null || !m.probe.reachable;
    const refreshDue = m.probe === null || started - m.probe.atMs >= probeRefreshMs;
    let headStart: NodeJS.Timeout | null = null;
    if (suspect || refreshDue) startProbe();
    else headStart = setTimeout(startProbe, probeAfterMs);

    const { status, why } = await fetchStatus(node.id, m.log);
    if (headStart !== null) clearTimeout(headStart);
    // A failed status is judged with a probe of this poll, never with an older one.
    if (status === null) startProbe();
    let pgReachable = m.probe?.reachable ?? false;
    if (check.probe !== null) {
      pgReachable = await check.probe;
      m.probe = { reachable: pgReachable, atMs: started };
    }
    m.agentUp = status !== null;
    d.metrics.pollObserved((d.clock.monotonicMs() - started) / 1000);

    const agent = status !== null;
    if (m.logged === null || m.logged.agent !== agent || m.logged.pg !== pgReachable) {
      const fields = { agentReachable: agent, pgReachable, ...(why === null ? {} : { why }) };
      const down = [...(agent ? [] : ['agent unreachable']), ...(pgReachable ? [] : ['postgresql unreachable'])];
      if (down.length === 0) m.log.info(fields, `${node.id}: agent and postgresql reachable`);
      else m.log.warn(fields, `${node.id}: ${down.join(', ')}`);
      m.logged = { agent, pg: pgReachable };
    }
    if (!stopped) d.onPoll(node.id, status, pgReachable);
    if (!stopped && status !== null) d.events?.statusAnswered(node.id);
  }

  function schedule(node: PolledNode, m: NodeMemory, dueMs: number): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (stopped) return;
      if (inFlight.has(node.id)) {
        d.log.debug({ node: node.id }, 'previous poll still running; skipping this heartbeat');
      } else {
        const p = pollOnce(node, m)
          .catch((e: unknown) => d.log.error({ err: e, node: node.id }, 'poll failed'))
          .finally(() => inFlight.delete(node.id));
        inFlight.set(node.id, p);
      }
      let next = dueMs + d.heartbeatMs;
      const now = d.clock.monotonicMs();
      // After a stall, skip the slots already missed instead of firing them back to back.
      while (next <= now) next += d.heartbeatMs;
      schedule(node, m, next);
    }, Math.max(0, dueMs - d.clock.monotonicMs()));
    timers.add(timer);
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      const first = d.clock.monotonicMs() + (d.offsetMs ?? 0);
      for (const node of d.nodes) {
        const m = memory.get(node.id);
        if (m !== undefined) schedule(node, m, first);
      }
    },
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.all([...inFlight.values()]);
      await d.events?.stop();
    },
  };
}
