// The global observer: every invariant the simulator checks, in one place (TigerBeetle keeps its
// state checker apart from the models the same way). The models report what happened; the checker
// decides whether it was allowed. The invariants are those of docs/design.md, "The simulator":
//   I1  never two writers: no two nodes (of 2 or 3) hold a valid lease while their PostgreSQL accepts writes,
//       and no write is acknowledged on an older timeline after one on a newer; on etcd, nobody
//       holds write authority in a term below one a handover txn created;
//   I2  persisted terms never go down, and grants never go to a lower term;
//   I3  a promotion never drops an acknowledged write in sync mode (async: at most lagBytesMax),
//       whichever node it promotes: with three nodes under ANY k, any failover the system allows;
//       and on etcd, whenever a write is acknowledged or the sync record changes, the record's claim
//       holds: k of its members hold every acknowledged write (R1 and R2: what every failover the
//       record allows rests on, checked whether or not a failover comes);
//   I4  promotion only after the WAL receiver stopped, from the newest timeline, never of a
//       noFailover node, and no vote is recorded during maintenance;
//   I5  EC2 never accepts a move for a lower term than an earlier one, nor for a stale term, and
//       after healing the VIP routes to the primary of the newest term;
//   I6  a restarted grantor keeps the promise it may have made before (a core rule: seen through I1);
//   I7  every term a node persists was created by a vote, a forced failover or a handover;
//   liveness: after every fault healed there is exactly one primary with a lease and the VIP, and
//       every other node is a standby streaming from it.
// Besides, the executor's order rule (persist first) and each node's own state invariants after
// each of its steps (core/invariants.ts, reported as "core invariant: …").
import {
  agentStepViolations,
  leaseValidUntilMs,
  witnessStepViolations,
  type Send,
  type AgentDurable,
  type AgentOutput,
  type AgentState,
  type PeerReply,
  type WitnessDurable,
  type WitnessOutput,
  type WitnessState,
} from '@pgvip/shared/core';
import type { DbNode, Host } from './schedule.js';

const MAX_VIOLATIONS = 20;

/** What the checker may look at in the models when it checks the whole cluster. */
export interface ClusterView {
  /** Write authority in real time (see holdsWriteAuthority). */
  authority(n: DbNode): boolean;
  durableTerm(n: DbNode): number;
  /** Where EC2 routes the VIP now. */
  routed(): DbNode | null;
  /** Whether n's PostgreSQL is a standby streaming from its primary. */
  streaming(n: DbNode): boolean;
  /** The node n's primary_conninfo names (null: none, or n is a primary). */
  upstream(n: DbNode): DbNode | null;
}

/** Write authority: a lease that is valid now (on the node's clock) AND a PostgreSQL that accepts writes. */
export function holdsWriteAuthority(
  n: DbNode,
  s: AgentState | null,
  pg: { readonly running: boolean; readonly inRecovery: boolean; readonly readOnly: boolean },
  localNowMs: number,
): boolean {
  if (s === null || !pg.running || pg.inRecovery || pg.readOnly) return false;
  const until = s.durable.primaryOfTerm === n ? leaseValidUntilMs(s) : null;
  return until !== null && localNowMs < until;
}

type RecordClaim = { readonly members: readonly string[]; readonly k: number };

/** What the record check reads: the sync record as stored, and whether a node holds a write. */
interface RecordWatch {
  readonly bytes: () => Buffer | null;
  readonly holds: (n: DbNode, timeline: number, lsn: bigint) => boolean;
}

export class Checker {
  readonly violations: string[] = [];
  #maxAckTimeline = 0;
  readonly #maxTermSeen: Record<Host, number> = { 'db-a': 1, 'db-b': 1, 'db-c': 1, witness: 1 };
  /** Terms of forced (accept-data-loss) promotions: exempt from the I3/I4 data checks. */
  readonly #manualTerms = new Set<number>();
  /** Terms that a vote, a forced failover or a handover created (I7: no node holds any other). */
  readonly #createdTerms = new Set<number>([1]);
  /** On etcd: the newest term a primary's handover txn gave its successor (its ok came back); 0 elsewhere. */
  #handedOverTerm = 0;
  /** The highest acknowledged LSN on each timeline (a node holds every acknowledged write iff it holds these). */
  readonly #maxAcked = new Map<number, bigint>();
  /** On etcd: the sync record's stored bytes and whether a node holds a write (set by watchSyncRecord). */
  #record: RecordWatch | null = null;
  #recordCache: { readonly bytes: Buffer; readonly claim: RecordClaim | null } | null = null;
  /** The record (bytes) already reported, so one broken claim is reported once. */
  #recordReported: Buffer | null = null;

  constructor(
    private readonly now: () => number,
    private readonly log: (who: string, text: string) => void,
    private readonly opts: {
      readonly replication: 'sync' | 'async';
      readonly lagBytesMax: bigint;
      readonly bootstrap: boolean;
      /** The database nodes (2 or 3). */
      readonly nodes: readonly DbNode[];
      /** Nodes never promoted automatically (config noFailover). */
      readonly noFailover?: readonly DbNode[];
    },
  ) {
    if (opts.bootstrap) {
      for (const h of Object.keys(this.#maxTermSeen) as Host[]) this.#maxTermSeen[h] = 0;
      this.#createdTerms.clear();
    }
  }

  violation(text: string): void {
    if (this.violations.length < MAX_VIOLATIONS) this.violations.push(`t=${Math.round(this.now())}ms: ${text}`);
    this.log('OBSERVER', `VIOLATION ${text}`);
  }
  /** The newest term any node persisted. */
  newestTerm(): number {
    return Math.max(...Object.values(this.#maxTermSeen));
  }
  /** Force-manual promotion bookkeeping (accept-data-loss runs are exempt from I3/I4 data checks). */
  markManual(term: number): void {
    this.#manualTerms.add(term);
  }

  // --- after each step of a node -------------------------------------------------------------------

  agentStep(n: DbNode, before: AgentState, out: AgentOutput, inputKind: string): void {
    for (const v of agentStepViolations(before, out)) this.violation(`core invariant: ${n} ${v} (after ${inputKind})`);
  }
  witnessStep(before: WitnessState, out: WitnessOutput, inputKind: string): void {
    for (const v of witnessStepViolations(before, out)) {
      this.violation(`core invariant: witness ${v} (after ${inputKind})`);
    }
  }
  /** I1 after every step: never two writers at once. */
  writers(view: ClusterView): void {
    // A step may follow a change of etcd's sync record (the bridge's txn): check the new claim at once.
    const r = this.#record;
    if (r !== null && this.opts.replication === 'sync' && r.bytes() !== this.#recordCache?.bytes) this.#recordHolds(r);
    const nodes = this.opts.nodes;
    let holder: DbNode | null = null;
    for (const n of nodes) {
      if (!view.authority(n)) continue;
      if (holder !== null) this.violation(`I1: ${holder} and ${n} both hold write authority`);
      holder = n;
    }
    // On etcd: once a handover txn named the successor for T+1, the old primary (fenced before it)
    // never writes in T again: the successor promotes as soon as it learns T+1, without waiting for
    // any lease of T to end. (A campaign's T+1 is not checked so: its winner acts only once it knows
    // it won, and a new campaign waits for the promises of T, so a grant of T after it is safe.)
    for (const n of nodes) {
      const term = view.durableTerm(n);
      if (term < this.#handedOverTerm && view.authority(n)) {
        this.violation(`I1: ${n} holds write authority in term ${term} after etcd's handover txn created term ${this.#handedOverTerm}`);
      }
    }
  }
  // --- terms and grants ----------------------------------------------------------------------------

  /**
   * h persists d over `before` in a step with these sends (I2, I4, I7). Terms are created in three places
   * only: the witness's vote and forced failover (a new votedTerm) and a primary's handover (it
   * persists the next term and sends it in the same step).
   */
  persisted(
    h: Host,
    d: AgentDurable | WitnessDurable,
    before: AgentDurable | WitnessDurable,
    sends: readonly Send[],
  ): void {
    if (h === 'witness') {
      const w = d as WitnessDurable;
      if (w.votedTerm > (before as WitnessDurable).votedTerm) this.#createdTerms.add(w.votedTerm);
    } else if (sends.some((m) => m.msg.kind === 'handover' && m.msg.term === d.term)) {
      this.#createdTerms.add(d.term);
    }
    if (d.term < this.#maxTermSeen[h]) {
      this.violation(`I2: ${h} persisted term ${d.term} below ${this.#maxTermSeen[h]}`);
    }
    // I7: a node adopts only terms that were created; a forged one (a key holder's lease request)
    // must be refused, above all one that leaves no room for the next term.
    if (d.term > 0 && !this.#createdTerms.has(d.term)) {
      this.violation(`I7: ${h} persisted term ${d.term}, which no vote, forced failover or handover created`);
    }
    this.#maxTermSeen[h] = Math.max(this.#maxTermSeen[h], d.term);
    if (h === 'witness') {
      const w = d as WitnessDurable;
      // I4: automatic failover is paused in maintenance — no new vote may be recorded while it is on.
      if (w.maintenance && w.votedTerm > (before as WitnessDurable).votedTerm && !this.#manualTerms.has(w.votedTerm)) {
        this.violation(
          `I4: the witness voted for ${w.votedFor} in term ${w.votedTerm} while the cluster is in maintenance`,
        );
      }
    }
  }
  /** On etcd, a txn moved the term record to `term` (a campaign, a handover): a term a vote created (I7). */
  termCreated(term: number): void {
    this.#createdTerms.add(term);
  }
  /** On etcd, a primary's handover txn named its successor for `term` (etcd answered it ok). */
  handedOver(term: number): void {
    this.#handedOverTerm = Math.max(this.#handedOverTerm, term);
  }
  /** I2: a grant is only ever given in the grantor's current term, never to a lower one. */
  reply(h: Host, msg: PeerReply): void {
    if ((msg.kind === 'lease-reply' || msg.kind === 'vote-reply') && msg.granted && msg.term < this.#maxTermSeen[h]) {
      this.violation(`I2: ${h} granted ${msg.kind} in term ${msg.term} after seeing ${this.#maxTermSeen[h]}`);
    }
  }

  // --- PostgreSQL and EC2 ------------------------------------------------------------------------

  /**
   * On etcd: check the sync record's claim at every acknowledgement (acked). `bytes` reads the record
   * as stored, `holds` whether a node's WAL holds a write (its timeline history included).
   */
  watchSyncRecord(bytes: () => Buffer | null, holds: (n: DbNode, timeline: number, lsn: bigint) => boolean): void {
    this.#record = { bytes, holds };
  }
  /** I1: acknowledged writes never go back to an older timeline. I3 on etcd: the sync record holds. */
  acked(n: DbNode, timeline: number, lsn: bigint): void {
    if (timeline < this.#maxAckTimeline) {
      this.violation(`I1: ${n} acknowledged a write on timeline ${timeline} ` +
        `after a write was acknowledged on timeline ${this.#maxAckTimeline}`);
    }
    this.#maxAckTimeline = Math.max(this.#maxAckTimeline, timeline);
    if (lsn > (this.#maxAcked.get(timeline) ?? -1n)) this.#maxAcked.set(timeline, lsn);
    if (this.#record !== null && this.opts.replication === 'sync') this.#recordHolds(this.#record);
  }
  /**
   * I3 over the sync record: it claims every acknowledged write is on k of its members; a failover it
   * allows (n − k + 1 final positions) relies on exactly that. Lost writes a forced failover accepted
   * are out of scope (none in the random runs).
   */
  #recordHolds(r: RecordWatch): void {
    const bytes = r.bytes();
    if (bytes === null) return;
    let cache = this.#recordCache;
    if (cache === null || cache.bytes !== bytes) {
      cache = this.#recordCache = { bytes, claim: claimOfRecord(bytes) };
    }
    const claim = cache.claim;
    if (claim === null || claim.k === 0 || this.#recordReported === bytes) return;
    const holders = claim.members.filter((m) =>
      [...this.#maxAcked].every(([tl, lsn]) => r.holds(m as DbNode, tl, lsn)));
    if (holders.length < claim.k) {
      this.#recordReported = bytes;
      this.violation(`I3: etcd's sync record claims ANY ${claim.k} (${claim.members.join(', ')}) but only ` +
        `${holders.length} of them (${holders.join(', ') || 'none'}) hold every acknowledged write`);
    }
  }
  /** I4, as pg_promote() starts on n: the WAL receiver stopped, and n is on the newest timeline. */
  promoting(n: DbNode, receiverOn: boolean, timeline: number, newestTimeline: number): void {
    if (receiverOn) this.violation(`I4: ${n} promoted while its WAL receiver was running`);
    if (timeline < newestTimeline) {
      this.violation(`I4: ${n} promoted from stale timeline ${timeline} (newest ${newestTimeline})`);
    }
  }
  /** I3, once n promoted for `term`: how many acknowledged writes (and bytes) its history lacks. */
  promoted(n: DbNode, term: number, lostWrites: number, lostBytes: bigint): void {
    if (this.opts.noFailover?.includes(n) === true && !this.#manualTerms.has(term)) {
      this.violation(`I4: ${n} is noFailover but was promoted (term ${term})`);
    }
    if (lostWrites === 0 || this.#manualTerms.has(term)) return;
    if (this.opts.replication === 'sync') {
      this.violation(`I3: promoting ${n} (term ${term}) loses ${lostWrites} acknowledged writes`);
    } else if (lostBytes > this.opts.lagBytesMax) {
      this.violation(`I3: promoting ${n} loses ${lostBytes} bytes, above lagBytesMax`);
    }
  }
  /** I5, as EC2 accepts a move of the VIP to n for `term`. */
  vipMove(n: DbNode, term: number, ownerTerm: number, nodeDurableTerm: number): void {
    const newest = this.newestTerm();
    if (term < ownerTerm) this.violation(`I5: VIP moved to ${n} for term ${term} after a move for term ${ownerTerm}`);
    if (term < newest && nodeDurableTerm < newest) {
      this.violation(`I5: VIP moved to ${n} for term ${term} while term ${newest} exists`);
    }
  }

  // --- at the end ----------------------------------------------------------------------------------

  /**
   * Liveness after healing: exactly one writable primary with a lease, holding the newest term and
   * the VIP, and a streaming standby. Returns that primary.
   */
  converged(view: ClusterView, healedForMs: number): DbNode | null {
    const holders = this.opts.nodes.filter((n) => view.authority(n));
    if (holders.length !== 1) {
      this.violation(
        `liveness: ${holders.length} nodes hold write authority ${healedForMs} ms after every fault healed`,
      );
      return null;
    }
    const p = holders[0]!;
    const newest = this.newestTerm();
    if (view.durableTerm(p) !== newest) {
      this.violation(`I5: primary ${p} holds term ${view.durableTerm(p)}, newest is ${newest}`);
    }
    if (view.routed() !== p) this.violation(`I5: VIP routes to ${view.routed()} but the primary is ${p}`);
    for (const standby of this.opts.nodes) {
      if (standby === p) continue;
      // Two nodes: the standby streams from the one other node there is.
      if (!view.streaming(standby) || (this.opts.nodes.length > 2 && view.upstream(standby) !== p)) {
        this.violation(`liveness: ${standby} is not streaming from ${p} after healing`);
      }
    }
    return p;
  }
}

/**
 * The claim of a stored sync record, in either form: {members, k, term}, or the two-node {standby,
 * term} (ANY 1 of the standby, or none); null when it is neither (the shell's parser reports those).
 */
function claimOfRecord(bytes: Buffer): RecordClaim | null {
  let r: { members?: unknown; k?: unknown; standby?: unknown };
  try {
    r = JSON.parse(bytes.toString('utf8')) as typeof r;
  } catch {
    return null;
  }
  if (Array.isArray(r.members) && typeof r.k === 'number') return { members: r.members as string[], k: r.k };
  if (typeof r.standby === 'string') return { members: [r.standby], k: 1 };
  return r.standby === null ? { members: [], k: 0 } : null;
}
