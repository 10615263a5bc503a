// The effects of N database nodes (docs/design.md, "More than one standby"), carried out on the
// PostgreSQL port: set-sync, sync-catch-up, follow, resume-wal-receiver. Node ids travel to
// PostgreSQL as their application_name (EffectPorts.names) and come back as node ids in details.
import type { Effect, EffectResult, NodeId, PgSnapshot } from '@pgvip/shared/core';
import type { EffectPorts } from './effects.js';
import { formatLsn } from './postgres/lsn.js';
import type { SyncCatchUpReport } from './postgres/port.js';

type SyncClaim = NonNullable<PgSnapshot['syncClaim']>;

const failed = (id: number, detail: string): EffectResult => ({ id, ok: false, detail });

/**
 * synchronous_standby_names for a claim, members as application names: '' (k = 0) or
 * ANY k ("a", "b"), names quoted as PostgreSQL reads them (core/nodes' synchronousStandbyNames,
 * after the mapping from node ids).
 */
export function standbyNamesFor(claim: SyncClaim, names: Readonly<Record<NodeId, string>>): string {
  if (claim.k <= 0) return '';
  const members = [...new Set(claim.members.map((m) => names[m] ?? m))].sort();
  return `ANY ${claim.k} (${members.map((m) => `"${m.replaceAll('"', '""')}"`).join(', ')})`;
}

export async function runSetSync(id: number, claim: SyncClaim, p: EffectPorts): Promise<EffectResult> {
  const value = standbyNamesFor(claim, p.names);
  const r = await p.pg.applySynchronousStandbyNames(value);
  const shown = value === '' ? "''" : value;
  if (r.unchanged) return { id, ok: true, detail: `synchronous_standby_names = ${shown} (already in force)` };
  const who = [`${r.walsenders.length} walsender(s)`, ...(r.checkpointer ? ['the checkpointer'] : [])].join(' and ');
  return { id, ok: true, detail: `synchronous_standby_names = ${shown} in force for ${who} in ${r.durationMs} ms` };
}

export async function runSyncCatchUp(
  id: number,
  effect: Extract<Effect, { kind: 'sync-catch-up' }>,
  p: EffectPorts,
): Promise<EffectResult> {
  const nodeOf = new Map(effect.members.map((m) => [(p.names[m] ?? m).toLowerCase(), m]));
  const r = await p.pg.syncCatchUp(effect.members.map((m) => p.names[m] ?? m), effect.count, effect.timeoutMs);
  const of = `${effect.count} of (${effect.members.join(', ')})`;
  if (r.caughtUp) return { id, ok: true, detail: `${of} flushed to ${formatLsn(r.targetLsn)} in ${r.durationMs} ms` };
  return failed(id, `${of} not flushed to ${formatLsn(r.targetLsn)} within ${effect.timeoutMs} ms: ${laggards(r, nodeOf)}`);
}

/** "db-c at 0/3000060 (streaming), db-d not connected": the members short of L. */
function laggards(r: SyncCatchUpReport, nodeOf: ReadonlyMap<string, NodeId>): string {
  return r.positions
    .filter((x) => x.flushLsn === null || x.flushLsn < r.targetLsn)
    .map((x) => {
      const node = nodeOf.get(x.applicationName.toLowerCase()) ?? x.applicationName;
      if (x.state === null) return `${node} not connected`;
      return `${node} at ${x.flushLsn === null ? 'nothing flushed' : formatLsn(x.flushLsn)} (${x.state})`;
    })
    .join(', ');
}

export async function runFollow(id: number, primary: NodeId, p: EffectPorts): Promise<EffectResult> {
  const endpoint = p.endpoints[primary];
  if (endpoint === undefined) return failed(id, `no PostgreSQL endpoint configured for ${primary}`);
  const r = await p.pg.followPrimary(endpoint, { name: primary, slotName: p.slots?.self ?? null });
  switch (r.outcome) {
    case 'streaming':
      return { id, ok: true, detail: r.reconfigured ? `streaming from ${primary}, re-pointed by a reload in ${r.durationMs} ms` : `streaming from ${primary} already` };
    case 'diverged':
      // The core reads this prefix and asks for a rejoin, which rewinds.
      return failed(id, `diverged: ${r.detail}`);
    case 'timeout':
      return failed(id, r.detail);
  }
}

export async function runResumeWalReceiver(
  id: number,
  effect: Extract<Effect, { kind: 'resume-wal-receiver' }>,
  p: EffectPorts,
): Promise<EffectResult> {
  // The term's primary when the core names it (contract-notes.md asks for it); else the port resumes
  // the primary_conninfo it cleared when it stopped the receiver.
  const primary = (effect as { readonly primary?: NodeId }).primary;
  if (primary === undefined) {
    await p.pg.resumeWalReceiver();
    return { id, ok: true, detail: 'WAL receiver resumed (primary_conninfo as before the stop)' };
  }
  const endpoint = p.endpoints[primary];
  if (endpoint === undefined) return failed(id, `no PostgreSQL endpoint configured for ${primary}`);
  await p.pg.resumeWalReceiver(endpoint);
  return { id, ok: true, detail: `WAL receiver resumed from ${primary}` };
}
