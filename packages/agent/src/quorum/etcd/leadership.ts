// Keeping etcd's raft leadership off the primary's host (docs/design.md, Quorum on etcd, "etcd's
// leader off the primary's host").
//
// Why: when the lost primary host also runs etcd's leader, the leader key outlives the host by an etcd
// election (one to two election timeouts) and the fresh TTL plus election timeout the new etcd leader
// gives every lease: the lab's three-node host loss took 5.4–8.0 s that way, 3.4 s otherwise. So the
// primary's agent asks etcd to move its leadership (MoveLeader, etcd's maintenance API) to another
// member while it is primary.
//
// Why it is safe: it changes no key. A leader change only lengthens leases (the new leader gives each
// its full TTL plus an election timeout), so the key still outlives the holder's validity (I1). While
// the transfer runs, the primary's renewals through etcd may fail for a beat; its standbys' grants
// carry the lease meanwhile, as for any etcd leader change. The price: a primary host lost within
// about a TTL after a move waits as long as before this existed; moves are rare (once per term when
// etcd's leader sits on the new primary's host, and after etcd elects it there again).
//
// The rule (`leaderMove`) is pure; where the members run (`hostIsLocal`) asks the host's interfaces.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import type { MonotonicClock } from '../../clock.js';
import type { Result } from './port.js';

/** One member's answer to etcd's Status, asked through one configured endpoint. */
export interface EtcdMemberSeen {
  readonly endpoint: string;
  readonly memberId: string;
  /** The member this one believes leads ('0': none). */
  readonly leaderId: string;
  /** Its raft applied index (a decimal string: etcd's uint64). */
  readonly appliedIndex: string;
  readonly isLearner: boolean;
}

/** What the agent needs of etcd to keep its leadership away (the real client: client.ts). */
export interface EtcdLeadershipPort {
  /** Each configured endpoint's Status, in the endpoints' order; null where none came in time. */
  memberStatuses(): Promise<readonly (EtcdMemberSeen | null)[]>;
  /** MoveLeader sent to `endpoint` (it must be the leader's): leadership to member `targetId`. */
  moveLeader(endpoint: string, targetId: string): Promise<Result<object>>;
}

export type LeaderMove =
  | { readonly move: false; readonly why: string }
  | { readonly move: true; readonly from: string; readonly leaderId: string; readonly to: string };

/**
 * Whether, and where, to move etcd's leadership: only when a member that answered is the leader (it
 * names itself), runs on this host, and another voting member that answered does not. The target is
 * the most caught-up such member (etcd refuses a transfer to one that cannot catch up in time).
 */
export function leaderMove(
  seen: readonly (EtcdMemberSeen | null)[], isLocal: (endpoint: string) => boolean,
): LeaderMove {
  const answered = seen.filter((s): s is EtcdMemberSeen => s !== null);
  const leader = answered.find((s) => s.leaderId !== '0' && s.memberId === s.leaderId);
  if (leader === undefined) return { move: false, why: 'no member that answered leads etcd' };
  if (!isLocal(leader.endpoint)) return { move: false, why: `etcd's leader (${leader.endpoint}) is not on this host` };
  const targets = answered
    .filter((s) => !s.isLearner && s.memberId !== leader.memberId && s.leaderId === leader.memberId)
    .filter((s) => !isLocal(s.endpoint))
    .sort((a, b) => compareIndex(b.appliedIndex, a.appliedIndex));
  const to = targets[0];
  if (to === undefined) return { move: false, why: `etcd's leader (${leader.endpoint}) is on this host, and no member elsewhere answered that follows it` };
  return { move: true, from: leader.endpoint, leaderId: leader.memberId, to: to.memberId };
}

function compareIndex(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** This host's addresses (every interface's, loopback included). */
export function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}

/** Whether an endpoint's host is this host: an address of one of its interfaces (a name: any it resolves to). */
export async function hostIsLocal(
  endpoint: string, addresses: ReadonlySet<string> = localAddresses(),
): Promise<boolean> {
  const host = new URL(endpoint).hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host) !== 0) return addresses.has(host);
  try {
    const found = await lookup(host, { all: true });
    return found.some((a) => addresses.has(a.address));
  } catch {
    return false;
  }
}

export interface KeepLeaderAwayOptions {
  readonly port: EtcdLeadershipPort;
  readonly endpoints: readonly string[];
  readonly logger: Logger;
  readonly clock: MonotonicClock;
  /** Where an endpoint runs; default: hostIsLocal, asked once per endpoint and kept for 60 s. */
  readonly isLocal?: (endpoint: string) => Promise<boolean>;
  /**
   * No second move within this of a move or a failed one (default 30 s): primaries of clusters that
   * share one etcd never bounce its leadership faster.
   */
  readonly pauseAfterMoveMs?: number;
}

const localCacheMs = 60_000;

/** One look per call of `step` while primary; at most one call at a time (the caller's rounds overlap nothing). */
export class KeepLeaderAway {
  readonly #o: KeepLeaderAwayOptions;
  readonly #log: Logger;
  #local: { readonly at: number; readonly set: ReadonlySet<string> } | null = null;
  #quietUntil = -Infinity;
  #refusedForGood = false;
  #running = false;
  /** Moves etcd accepted: for tests and the log. */
  moves = 0;

  constructor(opts: KeepLeaderAwayOptions) {
    this.#o = opts;
    this.#log = opts.logger;
  }

  /** Looks once (when not paused) and moves etcd's leadership off this host if it is here. */
  async step(): Promise<void> {
    if (this.#running || this.#refusedForGood || this.#o.clock() < this.#quietUntil) return;
    this.#running = true;
    try {
      const local = await this.#localEndpoints();
      // No member on this host (etcd on hosts of its own): nothing to ask etcd.
      if (local.size === 0) return;
      const seen = await this.#o.port.memberStatuses();
      const m = leaderMove(seen, (e) => local.has(e));
      if (!m.move) return;
      this.#quietUntil = this.#o.clock() + (this.#o.pauseAfterMoveMs ?? 30_000);
      const r = await this.#o.port.moveLeader(m.from, m.to);
      if (r.ok) {
        this.moves += 1;
        this.#log.info({ from: m.leaderId, to: m.to }, 'etcd\'s leader ran on the primary\'s host: moved to another member (quorum.etcd.keepLeaderOffPrimary)');
      } else if (/permission denied|not capable|auth/i.test(r.why)) {
        // Least privilege (docs/etcd.md): pgvip's role may not move etcd's leader. Said once, then left.
        this.#refusedForGood = true;
        this.#log.warn({ why: r.why }, 'etcd refused to move its leader off the primary\'s host: a lost primary host then also costs an etcd election (about 2 s); grant pgvip\'s etcd user the root role, or set quorum.etcd.keepLeaderOffPrimary: false to stop asking');
      } else {
        this.#log.info({ why: r.why }, 'etcd\'s leader runs on the primary\'s host; moving it failed, tried again later');
      }
    } finally {
      this.#running = false;
    }
  }

  async #localEndpoints(): Promise<ReadonlySet<string>> {
    const now = this.#o.clock();
    if (this.#local !== null && now - this.#local.at < localCacheMs) return this.#local.set;
    const isLocal = this.#o.isLocal ?? ((e: string) => hostIsLocal(e));
    const set = new Set<string>();
    for (const e of this.#o.endpoints) if (await isLocal(e)) set.add(e);
    this.#local = { at: now, set };
    return set;
  }
}
