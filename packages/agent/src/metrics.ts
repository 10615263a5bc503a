// Prometheus metrics of one agent (prom-client, a registry per agent so tests can run several).
import { Counter, Gauge, Registry } from 'prom-client';

export interface AgentMetrics {
  readonly registry: Registry;
  readonly role: Gauge<'role'>;
  readonly term: Gauge;
  readonly leaseRemaining: Gauge;
  readonly lagBytes: Gauge;
  readonly checksFailed: Counter<'check'>;
  readonly promotions: Counter;
  readonly vipMoves: Counter;
  readonly effectErrors: Counter<'effect'>;
  readonly events: Counter<'event'>;
  readonly leaseRenewals: Counter<'grantor' | 'result'>;
  readonly hookRuns: Counter<'hook' | 'result'>;
  readonly hookVetoes: Counter;
}

/** A lease request's outcome at one grantor: a grant, a refusal (with a reason), or no answer at all. */
export type LeaseRenewalResult = 'granted' | 'refused' | 'failed';


export const ROLES = ['primary', 'promoting', 'standby', 'candidate', 'fenced', 'rejoining', 'demoted', 'starting'] as const;

export function createAgentMetrics(labels: { cluster: string; node: string }): AgentMetrics {
  const registry = new Registry();
  registry.setDefaultLabels(labels);
  const opts = { registers: [registry] };
  const events = new Counter({ name: 'pgvip_agent_events_total', help: 'Notable events, by type', labelNames: ['event'], ...opts });
  const leaseRenewals = new Counter({
    name: 'pgvip_agent_lease_renewals_total',
    help: "The primary's lease requests, by grantor (witness or peer) and result (granted, refused, failed: no answer)",
    labelNames: ['grantor', 'result'],
    ...opts,
  });
  // Zeros from the start for what deploy/prometheus alerts on: increase() needs a sample before the
  // first event, or a counter that appears at 1 is never seen to rise.
  for (const event of ['vip-error', 'sync-degraded', 'failure-detected']) events.inc({ event }, 0);
  for (const grantor of ['witness', 'peer']) for (const result of ['granted', 'refused', 'failed']) leaseRenewals.inc({ grantor, result }, 0);
  return {
    registry,
    role: new Gauge({ name: 'pgvip_agent_role', help: '1 for the role this agent is in now, 0 for the others', labelNames: ['role'], ...opts }),
    term: new Gauge({ name: 'pgvip_agent_term', help: 'Highest term this agent has persisted', ...opts }),
    leaseRemaining: new Gauge({ name: 'pgvip_agent_lease_remaining_seconds', help: 'Remaining lease validity (primary only)', ...opts }),
    lagBytes: new Gauge({ name: 'pgvip_agent_replication_lag_bytes', help: 'Standby: primary LSN minus received LSN at the last report', ...opts }),
    checksFailed: new Counter({ name: 'pgvip_agent_checks_failed_total', help: 'Failed checks, by kind', labelNames: ['check'], ...opts }),
    promotions: new Counter({ name: 'pgvip_agent_promotions_total', help: 'Promotions of the local PostgreSQL', ...opts }),
    vipMoves: new Counter({ name: 'pgvip_agent_vip_moves_total', help: 'Successful VIP moves in EC2', ...opts }),
    effectErrors: new Counter({ name: 'pgvip_agent_effect_errors_total', help: 'Failed effects (PostgreSQL, EC2, OS), by kind', labelNames: ['effect'], ...opts }),
    events,
    leaseRenewals,
    hookRuns: new Counter({
      name: 'pgvip_agent_hook_runs_total',
      help: 'Runs of the hooks in the agent config (docs/hooks.md), by hook and result (ok, failed, timeout, error: could not start)',
      labelNames: ['hook', 'result'],
      ...opts,
    }),
    hookVetoes: new Counter({ name: 'pgvip_agent_hook_vetoes_total', help: 'Promotions the before-promote hook refused (non-zero exit, timeout or no start)', ...opts }),
  };
}
