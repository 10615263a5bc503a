// The witness's side of protocol v2 (wire/agent-events.ts in @pgvip/shared): after a poll whose
// status came back, it pulls the agent's own events (a VIP moved or failing, a rejoin that failed
// and why, a vetoed promotion, a re-seed fallback) and records them as the cluster's events, which
// the notifier fans out to the channels. Deduplicated: one event per node, type and term (a rejoin
// retried every minute, a veto repeated every heartbeat, is one notification until the term changes).
//
// A pull never holds up failure detection: it starts only after its node's status arrived, at most
// every pullEveryMs, never two at once per node, and it is bounded by the request timeout. An agent
// that predates v2 answers with an unsigned 404: the pull is refused, logged once, and tried again
// only after unsupportedRetryMs (the agent may have been upgraded meanwhile).
import type { Logger } from 'pino';
import { isPgvipError, type AgentEvent, type AgentEventsCursor, type NodeId, type PeerClient } from '@pgvip/shared';
import type { Clock } from './clock.js';

export interface AgentEventsDeps {
  readonly cluster: string;
  readonly peers: PeerClient;
  readonly clock: Clock;
  readonly log: Logger;
  /** Records one event of the cluster (history + notifier): ClusterRunner.record. */
  record(type: string, node: NodeId, detail: string): void;
  readonly pullEveryMs?: number;
  readonly unsupportedRetryMs?: number;
  /**
   * On first contact (a witness that just started), older events are taken as already handled:
   * a restarted witness must not notify again what its previous process did.
   */
  readonly firstContactMaxAgeMs?: number;
}

export const defaultAgentEventsTimings = {
  pullEveryMs: 1_000,
  unsupportedRetryMs: 60_000,
  firstContactMaxAgeMs: 60_000,
};

interface NodeReading {
  cursor: AgentEventsCursor | null;
  lastPullMs: number;
  retryAtMs: number;
  inFlight: Promise<void> | null;
  /** Whether the node's refusal was logged (once per outage, not per try). */
  refusedLogged: boolean;
}

const dedupCapacity = 1_000;

export class AgentEventsReader {
  readonly #d: AgentEventsDeps;
  readonly #t: typeof defaultAgentEventsTimings;
  readonly #nodes = new Map<NodeId, NodeReading>();
  /** node|event|term of events already recorded, oldest first (bounded). */
  readonly #seen = new Set<string>();
  #stopped = false;

  constructor(deps: AgentEventsDeps) {
    this.#d = deps;
    this.#t = {
      pullEveryMs: deps.pullEveryMs ?? defaultAgentEventsTimings.pullEveryMs,
      unsupportedRetryMs: deps.unsupportedRetryMs ?? defaultAgentEventsTimings.unsupportedRetryMs,
      firstContactMaxAgeMs: deps.firstContactMaxAgeMs ?? defaultAgentEventsTimings.firstContactMaxAgeMs,
    };
  }

  /** Called after `node`'s status answered; starts a pull when one is due. Never throws, never waits. */
  statusAnswered(node: NodeId): void {
    const pull = this.#d.peers.events;
    if (this.#stopped || pull === undefined) return;
    const now = this.#d.clock.monotonicMs();
    let r = this.#nodes.get(node);
    if (r === undefined) {
      r = { cursor: null, lastPullMs: -Infinity, retryAtMs: -Infinity, inFlight: null, refusedLogged: false };
      this.#nodes.set(node, r);
    }
    if (r.inFlight !== null || now < r.retryAtMs || now - r.lastPullMs < this.#t.pullEveryMs) return;
    r.lastPullMs = now;
    const reading = r;
    reading.inFlight = pull
      .call(this.#d.peers, node, reading.cursor)
      .then((reply) => {
        if (reply.cluster !== this.#d.cluster || reply.from !== node) {
          throw new Error(`the events reply speaks for ${reply.from} of ${reply.cluster}`);
        }
        const firstContact = reading.cursor === null;
        const sameLog = reading.cursor?.log === reply.log;
        for (const e of reply.events) {
          if (sameLog && e.seq <= reading.cursor!.after) continue;
          if (firstContact && e.ageMs > this.#t.firstContactMaxAgeMs) continue;
          this.#take(node, e);
        }
        const after = reply.events.length === 0 ? reply.last : reply.events[reply.events.length - 1]!.seq;
        reading.cursor = { log: reply.log, after };
        if (reading.refusedLogged) this.#d.log.info({ node }, `${node}: its agent serves its own events (protocol v2) again`);
        reading.refusedLogged = false;
      })
      .catch((e: unknown) => {
        // No answer in time, or no connection: a node failing over, a busy link. Tried again at the
        // pull pace (the events wait in the agent's ring); only a refusal, which is what an agent of
        // an older release gives, waits unsupportedRetryMs. A minute's wait after every timeout
        // held back the vip-moved of a new primary, just when operators want it.
        if (isPgvipError(e, 'PGVIP_PEER_TIMEOUT') || isPgvipError(e, 'PGVIP_PEER_UNREACHABLE')) {
          this.#d.log.debug({ node, why: (e as Error).message }, `${node}: its events could not be pulled this time`);
          return;
        }
        reading.retryAtMs = this.#d.clock.monotonicMs() + this.#t.unsupportedRetryMs;
        if (!reading.refusedLogged) {
          this.#d.log.info(
            { node, why: (e as Error).message },
            `${node}: could not read its agent's own events (protocol v2; an agent of an older release does not serve them): ` +
              `vip-moved, vip-error and the rejoin reasons of this node reach no notification channel; trying again in ${Math.round(this.#t.unsupportedRetryMs / 1000)} s`,
          );
          reading.refusedLogged = true;
        }
      })
      .finally(() => {
        reading.inFlight = null;
      });
  }

  #take(node: NodeId, e: AgentEvent): void {
    const key = `${node}|${e.event}|${e.term}`;
    if (this.#seen.has(key)) {
      this.#d.log.debug({ node, event: e.event, term: e.term }, `${node}: ${e.event} again in term ${e.term}: already notified`);
      return;
    }
    this.#seen.add(key);
    if (this.#seen.size > dedupCapacity) this.#seen.delete(this.#seen.values().next().value!);
    try {
      this.#d.record(e.event, node, `${node} (its agent): ${e.detail}`);
    } catch (err) {
      // The witness is closing, or its history refused the write: the agent's log still has it.
      this.#d.log.warn({ err, node, event: e.event }, `${node}: could not record its agent's ${e.event} event`);
    }
  }

  /** Stops pulling and waits for the pulls in flight (each ends within the request timeout). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all([...this.#nodes.values()].map((r) => r.inFlight));
  }
}
