// The PostgreSQL model of every database node: LSNs, a client writing through the VIP, streaming
// from the node primary_conninfo names (following a new timeline when the standby has not passed its
// fork), synchronous commit under `ANY k (…)` (a commit is acknowledged once k of the named standbys
// reported a flush past it: pg_stat_replication's flush_lsn, kept per standby), the WAL receiver,
// promotion onto a new timeline (with its history), fencing, disk stalls and rewind. It reports
// what happened to the checker (acks, promotions).
import type { Effect, EffectResult, PgSnapshot, ReplicaState, WriteProbe } from '@pgvip/shared/core';
import { NO_CLAIM, normalClaim, type SyncClaim } from '../../packages/shared/src/core/nodes/index.js';
import type { Checker } from './checker.js';
import type { Hosts, SimClock } from './clock.js';
import type { Finish } from './ec2.js';
import type { Network } from './network.js';
import type { RngStreams } from './rng.js';
import type { DbNode } from './schedule.js';

const WRITE_EVERY_MS = 100;
const PUMP_EVERY_MS = 25;
const STREAM_FRESH_MS = 1000;
const COMMIT_TIMEOUT_MS = 2000;
/** How long the agent's shell lets pg_ctl restart run before it reports a failure. */
const RESTART_BOUND_MS = 30_000;
export const WRITE_BYTES = 100n;

export interface AckRecord {
  readonly t: number;
  readonly node: DbNode;
  readonly timeline: number;
  readonly lsn: bigint;
}

export interface PromotionRecord {
  readonly t: number;
  readonly node: DbNode;
  readonly term: number;
  readonly lostWrites: number;
}

export interface PgModel {
  running: boolean;
  inRecovery: boolean;
  readOnly: boolean;
  timeline: number;
  /** Ancestor timelines and the LSN where each ended (PostgreSQL's timeline history). */
  history: Map<number, bigint>;
  lsn: bigint;
  receiverOn: boolean;
  lastStreamAt: number;
  caughtUpAt: number;
  /** synchronous_standby_names in force, as a claim (NO_CLAIM: async). */
  claim: SyncClaim;
  /** The claim came from the two-node `set-sync-standby` (pg_stat_replication says 'sync', not 'quorum'). */
  claimFirst: boolean;
  /**
   * While a `set-sync` reload spreads (until its effect is done), some walsenders still release
   * commits by the claim before it: a commit is acknowledged when either claim is met.
   */
  claimBefore: SyncClaim | null;
  /** Standby: the node primary_conninfo names (null: none). */
  upstream: DbNode | null;
  /** Primary: each standby's last reported flush (pg_stat_replication.flush_lsn), when, on which timeline. */
  replicaFlush: Map<DbNode, { lsn: bigint; at: number; timeline: number }>;
  /** The lag fault: until when the standby receives at most lagBytes a round. */
  lagUntil: number;
  lagBytes: bigint;
  stalledUntil: number;
  /** Until when the node's before-promote hook vetoes promotions (the veto-promote fault). */
  vetoUntil: number;
  /** How the next planned restart goes (the planned-restart fault); null: 300–1500 ms, and it starts. */
  plannedRestart: { readonly takesMs: number; readonly fails: boolean } | null;
  pending: { lsn: bigint; issuedAt: number }[];
}

export interface PostgresDeps {
  readonly clock: SimClock;
  readonly hosts: Hosts;
  /** Each node's PostgreSQL draws its effects' durations from its own stream (`pg db-a`). */
  readonly rngs: RngStreams;
  readonly net: Network;
  readonly check: Checker;
  readonly log: (who: string, text: string) => void;
  /** Where EC2 routes the VIP, i.e. where the client's writes go. */
  readonly routed: () => DbNode | null;
  readonly replication: 'sync' | 'async';
  readonly writeProbeTimeoutMs: number;
  /**
   * How long a standby's receiver may go without a message before it stops counting as streaming:
   * the agent's receiverSilenceMs (core/timings.ts), as its shell reads pg_stat_wal_receiver.
   */
  readonly receiverSilenceMs: number;
  /** The database nodes, config order; the first starts as primary, the others as its standbys. */
  readonly nodes: readonly DbNode[];
  /** In sync mode the first primary's standbys in `ANY 1 (…)` (default: every standby; never a noFailover one). */
  readonly syncStandbys?: readonly DbNode[];
  /** A bug planted in the agent's PostgreSQL shell (variants.ts). */
  readonly bug?: PgBug;
}

/**
 * Bugs planted in the agent's PostgreSQL shell (variants.ts): 'catch-up-at-once' reads the catch-up's
 * L from what the members already flushed instead of pg_current_wal_lsn(), so it is done at once,
 * and a stronger sync record is written before its members hold what was acknowledged (R2 broken).
 */
export type PgBug = 'catch-up-at-once';

export class Postgres {
  readonly pg: Record<DbNode, PgModel>;
  readonly #nodes: readonly DbNode[];
  /** Three or more nodes: snapshots carry syncClaim, replicas and upstream (a two-node agent leaves them out). */
  readonly #nNode: boolean;
  readonly acks: AckRecord[] = [];
  readonly promotions: PromotionRecord[] = [];
  writesAttempted = 0;

  constructor(private readonly d: PostgresDeps) {
    const [first, ...standbys] = d.nodes as [DbNode, ...DbNode[]];
    this.#nodes = d.nodes;
    this.#nNode = d.nodes.length >= 3;
    // Sync mode starts as the config wants it: ANY 1 of the standbys (the two-node form with one).
    const claim = d.replication === 'sync' ? normalClaim({ members: d.syncStandbys ?? standbys, k: 1 }) : NO_CLAIM;
    const mkPg = (primary: boolean): PgModel => ({
      running: true, inRecovery: !primary, readOnly: false, timeline: 1, history: new Map(), lsn: 1000n,
      receiverOn: !primary, lastStreamAt: 0, caughtUpAt: 0, claim: primary ? claim : NO_CLAIM,
      claimFirst: !this.#nNode, claimBefore: null, upstream: primary ? null : first, replicaFlush: new Map(),
      lagUntil: 0, lagBytes: 0n,
      stalledUntil: 0, vetoUntil: 0, pending: [], plannedRestart: null,
    });
    const pg: Partial<Record<DbNode, PgModel>> = {};
    for (const n of d.nodes) pg[n] = mkPg(n === first);
    this.pg = pg as Record<DbNode, PgModel>;
  }

  /** Start the client's writes and the replication pump. */
  start(): void {
    this.d.clock.after(PUMP_EVERY_MS, () => this.#pump());
    this.d.clock.after(WRITE_EVERY_MS, () => this.#clientWrite());
  }
  /** PostgreSQL answers: running on a host that is up and not paused. */
  usable(n: DbNode): boolean {
    return this.pg[n].running && !this.d.hosts.crashed(n) && !this.d.hosts.paused(n);
  }
  stalled(n: DbNode): boolean {
    return this.d.clock.t < this.pg[n].stalledUntil;
  }
  streaming(n: DbNode): boolean {
    const p = this.pg[n];
    const fresh = this.d.clock.t - p.lastStreamAt <= this.d.receiverSilenceMs && p.lastStreamAt > 0;
    return p.running && p.inRecovery && p.receiverOn && fresh;
  }
  /** What the agent's check of its PostgreSQL sees. */
  snapshot(n: DbNode): PgSnapshot {
    const p = this.pg[n];
    if (!p.running) {
      const down = {
        running: false, inRecovery: false, writable: false, timeline: 0, lsn: 0n, replayLsn: 0n,
        streaming: false, syncStandby: null, standbyInSync: false,
      };
      return this.#nNode ? { ...down, syncClaim: NO_CLAIM, replicas: [], upstream: null } : down;
    }
    // In sync: k members stream from n and caught up lately (two nodes: the one sync standby).
    const inSync = (m: DbNode) => this.pg[m].upstream === n && this.streaming(m) &&
      this.d.clock.t - this.pg[m].caughtUpAt <= 2 * PUMP_EVERY_MS;
    const claim = p.claim;
    const standbyInSync = !p.inRecovery && claim.k > 0 &&
      claim.members.filter((m) => inSync(m as DbNode)).length >= claim.k;
    const snap: PgSnapshot = {
      running: true,
      inRecovery: p.inRecovery,
      writable: !p.inRecovery && !p.readOnly,
      timeline: p.timeline,
      lsn: p.lsn,
      replayLsn: p.lsn,
      streaming: this.streaming(n),
      syncStandby: p.inRecovery || claim.k === 0 ? null : claim.members[0] ?? null,
      standbyInSync,
    };
    if (!this.#nNode) return snap;
    return {
      ...snap,
      syncClaim: p.inRecovery ? NO_CLAIM : claim,
      replicas: p.inRecovery ? [] : this.#replicas(n),
      // A stopped receiver is an emptied primary_conninfo (the agent's way to stop it): no upstream.
      upstream: p.inRecovery && p.receiverOn ? p.upstream : null,
    };
  }
  /** The primary's pg_stat_replication: a row for each standby whose walsender heard from it lately. */
  #replicas(n: DbNode): ReplicaState[] {
    const p = this.pg[n];
    const rows: ReplicaState[] = [];
    for (const [m, f] of p.replicaFlush) {
      if (!this.#fresh(p, f)) continue;
      const member = p.claim.k > 0 && p.claim.members.includes(m);
      const syncState = !member ? 'async' : p.claimFirst ? 'sync' : 'quorum';
      rows.push({ node: m, flushLsn: f.lsn, streaming: true, syncState });
    }
    return rows;
  }
  /** A standby's flush report the primary still holds: its walsender heard from it lately, on this timeline. */
  #fresh(p: PgModel, f: { readonly at: number; readonly timeline: number }): boolean {
    return f.timeline === p.timeline && this.d.clock.t - f.at <= STREAM_FRESH_MS;
  }
  /** How many members of `claim` reported a flush at or past lsn to p. */
  #flushedBy(claim: SyncClaim, p: PgModel, lsn: bigint): number {
    let count = 0;
    for (const m of claim.members) {
      const f = p.replicaFlush.get(m as DbNode);
      if (f !== undefined && f.lsn >= lsn && this.#fresh(p, f)) count++;
    }
    return count;
  }
  /** The agent's write probe on n. */
  writeProbe(n: DbNode): WriteProbe {
    const p = this.pg[n];
    if (!p.running) return 'failed';
    if (p.inRecovery) return 'not-run';
    // A probe on a stalled disk finishes late; it only counts as stalled if it outlasts its timeout.
    if (this.stalled(n) && p.stalledUntil - this.d.clock.t >= this.d.writeProbeTimeoutMs) return 'stalled';
    if (p.readOnly) return 'read-only';
    // The probe commits with synchronous_commit = local: a lost standby must not look like a stall.
    p.lsn += 10n;
    return 'ok';
  }
  /** The lag fault: n receives at most `bytes` a round for durMs. */
  lag(n: DbNode, bytes: number, durMs: number): void {
    const p = this.pg[n];
    p.lagUntil = Math.max(p.lagUntil, this.d.clock.t + durMs);
    p.lagBytes = BigInt(bytes);
  }
  /** PostgreSQL stops (crash, kill -9): its waiting commits are gone. */
  down(n: DbNode): void {
    const p = this.pg[n];
    p.running = false;
    p.pending = [];
    // It starts again with the setting it was reloading, in force from the start.
    p.claimBefore = null;
  }

  /**
   * Streaming replication, every PUMP_EVERY_MS: each standby receives from its upstream and flushes
   * (one round: the flush and its report to the primary are one event, so nothing is ever reported
   * flushed before it is), then each primary acknowledges the commits k members flushed.
   */
  #pump(): void {
    const { clock, net } = this.d;
    for (const s of this.#nodes) {
      const sp = this.pg[s];
      const u = sp.upstream;
      if (u === null || !sp.running || !sp.inRecovery || !sp.receiverOn || !this.usable(s) || this.stalled(s)) continue;
      const up = this.pg[u];
      if (!this.usable(u) || up.inRecovery || !this.#canFollow(sp, up)) continue;
      if (!net.linkUp(u, s) || !net.linkUp(s, u)) continue;
      if (net.lost(u, s)) continue;
      if (up.timeline !== sp.timeline) {
        // recovery_target_timeline = 'latest': the standby follows the new timeline at its fork.
        sp.timeline = up.timeline;
        sp.history = new Map(up.history);
        this.d.log(s, `postgresql follows ${u} onto timeline ${up.timeline}`);
      }
      const lagging = clock.t < sp.lagUntil;
      if (up.lsn > sp.lsn) sp.lsn = lagging && up.lsn - sp.lsn > sp.lagBytes ? sp.lsn + sp.lagBytes : up.lsn;
      sp.lastStreamAt = clock.t;
      if (sp.lsn >= up.lsn) sp.caughtUpAt = clock.t;
      up.replicaFlush.set(s, { lsn: sp.lsn, at: clock.t, timeline: up.timeline });
    }
    for (const n of this.#nodes) {
      const p = this.pg[n];
      if (p.pending.length > 0 && (p.claim.k > 0 || p.claimBefore !== null) && this.usable(n)) this.#release(n);
      if (p.pending.length > 0 && clock.t - p.pending[0]!.issuedAt > COMMIT_TIMEOUT_MS) {
        p.pending = p.pending.filter((c) => clock.t - c.issuedAt <= COMMIT_TIMEOUT_MS);
      }
    }
    clock.after(PUMP_EVERY_MS, () => this.#pump());
  }
  /** A standby can stream from up: the same timeline, or a newer one that forked at or after its position. */
  #canFollow(sp: PgModel, up: PgModel): boolean {
    if (up.timeline === sp.timeline) return true;
    const fork = up.history.get(sp.timeline);
    return up.timeline > sp.timeline && fork !== undefined && sp.lsn <= fork;
  }
  /** Acknowledge the commits on n that k members of its claim (or of the one before, mid-reload) flushed. */
  #release(n: DbNode): void {
    const p = this.pg[n];
    const before = p.claimBefore;
    const keep: PgModel['pending'] = [];
    for (const c of p.pending) {
      const met = this.#flushedBy(p.claim, p, c.lsn) >= p.claim.k ||
        (before !== null && this.#flushedBy(before, p, c.lsn) >= before.k);
      if (met) this.#ack(n, c.lsn);
      else keep.push(c);
    }
    p.pending = keep;
  }
  #ack(n: DbNode, lsn: bigint): void {
    const tl = this.pg[n].timeline;
    this.acks.push({ t: this.d.clock.t, node: n, timeline: tl, lsn });
    this.d.check.acked(n, tl, lsn);
  }
  /** The client writes through the VIP every WRITE_EVERY_MS. */
  #clientWrite(): void {
    this.writesAttempted++;
    const n = this.d.routed();
    if (n !== null && this.d.net.linkUp('client', n) && this.usable(n) && !this.stalled(n)) {
      const p = this.pg[n];
      if (!p.inRecovery && !p.readOnly) {
        p.lsn += WRITE_BYTES;
        if (p.claim.k > 0) p.pending.push({ lsn: p.lsn, issuedAt: this.d.clock.t });
        else this.#ack(n, p.lsn);
      }
    }
    this.d.clock.after(WRITE_EVERY_MS, () => this.#clientWrite());
  }
  #preserved(n: DbNode, a: Pick<AckRecord, 'timeline' | 'lsn'>): boolean {
    const p = this.pg[n];
    if (a.timeline === p.timeline) return a.lsn <= p.lsn;
    const end = p.history.get(a.timeline);
    return end !== undefined && a.lsn <= end;
  }
  /** Whether n's WAL (its timeline history included) holds the write at `lsn` on `timeline`. */
  holds(n: DbNode, timeline: number, lsn: bigint): boolean {
    return Object.hasOwn(this.pg, n) && this.#preserved(n, { timeline, lsn });
  }
  /** pg_promote() on n, asked for by the agent in `term`. */
  #promote(n: DbNode, term: number): Omit<EffectResult, 'id'> {
    const p = this.pg[n];
    // As the agent's runner does: the hook runs before pg_promote() and its veto is a failed promote.
    if (this.d.clock.t < p.vetoUntil) return { ok: false, detail: 'vetoed by the before-promote hook (exited 1)' };
    if (!p.running) return { ok: false, detail: 'postgresql not running' };
    if (!p.inRecovery) return { ok: true, detail: 'already primary' };
    const maxTl = Math.max(...this.#nodes.map((m) => this.pg[m].timeline));
    this.d.check.promoting(n, p.receiverOn, p.timeline, maxTl);
    p.history.set(p.timeline, p.lsn);
    p.timeline = maxTl + 1;
    p.inRecovery = false;
    p.receiverOn = false;
    p.claim = NO_CLAIM;
    p.upstream = null;
    p.replicaFlush.clear();
    let lost = 0;
    let lostBytes = 0n;
    for (const a of this.acks) {
      if (!this.#preserved(n, a)) {
        lost++;
        lostBytes += WRITE_BYTES;
      }
    }
    this.d.check.promoted(n, term, lost, lostBytes);
    this.promotions.push({ t: this.d.clock.t, node: n, term, lostWrites: lost });
    const lostNote = lost ? `, ${lost} acked writes lost` : '';
    this.d.log(n, `postgresql promoted to timeline ${p.timeline} at lsn ${p.lsn} (term ${term}${lostNote})`);
    return { ok: true, detail: 'promoted' };
  }

  /**
   * The effects of n's agent on its PostgreSQL; false for an effect that is not PostgreSQL's.
   * `term` is the agent's durable term when the promotion finishes.
   */
  effect(n: DbNode, e: Effect, finish: Finish, termNow: () => number): boolean {
    const p = this.pg[n];
    const { log } = this.d;
    const rng = this.d.rngs.get(`pg ${n}`);
    const fail = (detail: string) => ({ ok: false, detail });
    switch (e.kind) {
      case 'fence':
        if (this.stalled(n)) {
          // ALTER SYSTEM cannot write on a stalled disk: the shell falls back to an immediate stop.
          finish(1000, () => {
            this.down(n);
            p.readOnly = true;
            return { ok: true, detail: 'stopped (disk stalled)', finalLsn: p.lsn };
          });
          return true;
        }
        finish(rng.int(10, 50), () => {
          p.readOnly = true;
          p.pending = [];
          if (e.mode === 'fast-stop') this.down(n);
          log(n, `postgresql fenced (${e.mode})`);
          return { ok: true, detail: 'fenced', finalLsn: p.lsn };
        });
        return true;
      case 'unfence':
        finish(rng.int(10, 30), () => {
          if (!p.running) return fail('postgresql not running');
          p.readOnly = false;
          return { ok: true, detail: 'unfenced' };
        });
        return true;
      case 'stop-wal-receiver':
        finish(rng.int(20, 100), () => {
          if (!p.running) return fail('postgresql not running');
          p.receiverOn = false;
          return { ok: true, detail: 'receiver stopped', finalLsn: p.lsn };
        });
        return true;
      case 'set-sync-standby':
        finish(rng.int(10, 30), () => {
          if (!p.running || this.stalled(n)) return fail('postgresql not available');
          this.#setClaim(n, e.standby === null ? NO_CLAIM : { members: [e.standby], k: 1 }, true);
          return { ok: true, detail: `synchronous_standby_names=${e.standby ?? ''}` };
        });
        return true;
      case 'set-sync': {
        // A reload reaches each walsender at its own pace: until the effect is done (in force in
        // every walsender), a commit may be released by the old claim or by the new one.
        const next = normalClaim(e.claim);
        if (p.running && !this.stalled(n)) {
          p.claimBefore = p.claim;
          p.claim = next;
        }
        finish(rng.int(10, 30), () => {
          p.claimBefore = null;
          if (!p.running || this.stalled(n)) return fail('postgresql not available');
          this.#setClaim(n, next, false);
          return { ok: true, detail: `synchronous_standby_names=${describeClaim(p.claim)}` };
        });
        return true;
      }
      case 'sync-catch-up':
        this.#catchUp(n, e.members as readonly DbNode[], e.count, e.timeoutMs, finish);
        return true;
      case 'follow':
        finish(rng.int(50, 200), () => this.#follow(n, e.primary as DbNode));
        return true;
      case 'resume-wal-receiver':
        finish(rng.int(20, 100), () => {
          if (!p.running) return fail('postgresql not running');
          p.receiverOn = true;
          return { ok: true, detail: `receiver resumed (upstream ${p.upstream ?? 'none'})` };
        });
        return true;
      case 'promote':
        finish(rng.int(200, 600), () => this.#promote(n, termNow()));
        return true;
      case 'start-postgres':
        finish(rng.int(300, 800), () => {
          if (this.stalled(n)) return fail('start timed out (disk stalled)');
          p.running = true;
          return { ok: true, detail: 'started' };
        });
        return true;
      case 'restart-postgres': {
        // pg_ctl restart -m fast: the server stops at once (waiting commits end) and starts again,
        // as configured: a fenced server comes back fenced (readOnly stays).
        const plan = p.plannedRestart ?? { takesMs: rng.int(300, 1500), fails: false };
        p.plannedRestart = null;
        this.down(n);
        log(n, 'postgresql stopped for a planned restart');
        // The shell bounds pg_ctl: a start that takes longer fails, and the server stays down.
        finish(Math.min(plan.takesMs, RESTART_BOUND_MS), () => {
          if (plan.takesMs > RESTART_BOUND_MS) return fail(`pg_ctl start timed out after ${RESTART_BOUND_MS} ms`);
          if (plan.fails || this.stalled(n)) return fail('pg_ctl start failed');
          p.running = true;
          log(n, 'postgresql started after a planned restart');
          return { ok: true, detail: 'restarted' };
        });
        return true;
      }
      case 'rejoin':
        this.#rejoin(n, e.primary as DbNode, finish);
        return true;
      default:
        return false;
    }
  }
  /** synchronous_standby_names = claim (reloaded): '' acknowledges every waiting commit at once. */
  #setClaim(n: DbNode, claim: SyncClaim, first: boolean): void {
    const p = this.pg[n];
    p.claim = normalClaim(claim);
    p.claimFirst = first;
    if (p.claim.k === 0) {
      for (const c of p.pending) this.#ack(n, c.lsn);
      p.pending = [];
    }
  }
  /**
   * R2's catch-up: L is the WAL position when it starts (the setting is in force); done once `count`
   * of `members` reported a flush ≥ L, failed after timeoutMs (on the agent's clock) naming who lagged.
   */
  #catchUp(n: DbNode, members: readonly DbNode[], count: number, timeoutMs: number, finish: Finish): void {
    const { clock } = this.d;
    const p = this.pg[n];
    const fail = (detail: string) => ({ ok: false, detail });
    if (!p.running || p.inRecovery) return finish(5, () => fail('not a running primary'));
    if (this.d.bug === 'catch-up-at-once') return finish(5, () => ({ ok: true, detail: 'members flushed what they have' }));
    const L = p.lsn;
    const endAt = clock.t + clock.realDelay(n, timeoutMs);
    const caughtUp = () => members.filter((m) => {
      const f = p.replicaFlush.get(m);
      return f !== undefined && f.lsn >= L && this.#fresh(p, f);
    });
    const look = (): void => {
      if (!p.running) return finish(0, () => fail('postgresql not running'));
      const done = caughtUp();
      if (done.length >= count) return finish(0, () => ({ ok: true, detail: `${done.join(', ')} flushed ${L}` }));
      if (clock.t >= endAt) {
        const lagged = members.filter((m) => !done.includes(m));
        return finish(0, () => fail(`${count} of ${members.join(', ')} did not flush ${L} in ${timeoutMs} ms (lagged: ${lagged.join(', ')})`));
      }
      clock.after(PUMP_EVERY_MS, look);
    };
    clock.after(PUMP_EVERY_MS, look);
  }
  /**
   * A standby re-points primary_conninfo at `to` and reloads (the WAL receiver restarts, also one
   * stopped for an election); ok when it can stream from it now, `diverged:` when it flushed WAL on
   * its timeline past the fork of `to`'s (PostgreSQL refuses that timeline: a rewind is needed).
   */
  #follow(n: DbNode, to: DbNode): Omit<EffectResult, 'id'> {
    const p = this.pg[n];
    const fail = (detail: string) => ({ ok: false, detail });
    if (!p.running || this.stalled(n)) return fail('postgresql not available');
    if (!p.inRecovery) return fail('not a standby');
    p.upstream = to;
    p.receiverOn = true;
    const tp = this.pg[to];
    if (!this.usable(to) || tp.inRecovery || !this.d.net.linkUp(n, to) || !this.d.net.linkUp(to, n)) {
      return fail(`primary_conninfo names ${to}, not streaming from it yet`);
    }
    if (!this.#canFollow(p, tp)) {
      const fork = tp.history.get(p.timeline);
      return fail(`diverged: ${n} is at ${p.lsn} on timeline ${p.timeline}, ${to} is on timeline ${tp.timeline}` +
        (fork === undefined ? '' : ` forked at ${fork}`));
    }
    return { ok: true, detail: `streaming from ${to}` };
  }
  /** pg_rewind from src and restart as its standby. */
  #rejoin(n: DbNode, src: DbNode, finish: Finish): void {
    const p = this.pg[n];
    const fail = (detail: string) => ({ ok: false, detail });
    const ok = this.usable(src) && !this.pg[src].inRecovery && this.d.net.linkUp(n, src) && this.d.net.linkUp(src, n);
    if (!ok) return finish(500, () => fail(`cannot reach primary ${src}`));
    finish(this.d.rngs.get(`pg ${n}`).int(1000, 3000), () => {
      const sp = this.pg[src];
      if (!this.usable(src) || sp.inRecovery) return fail(`${src} is no longer a usable primary`);
      p.running = true;
      p.inRecovery = true;
      p.readOnly = false;
      p.timeline = sp.timeline;
      p.history = new Map(sp.history);
      p.lsn = sp.lsn;
      p.receiverOn = true;
      p.upstream = src;
      p.claim = NO_CLAIM;
      p.replicaFlush.clear();
      p.lastStreamAt = 0;
      p.pending = [];
      this.d.log(n, `rewound and restarted as a standby of ${src} on timeline ${sp.timeline}`);
      return { ok: true, detail: 'pg_rewind' };
    });
  }
}

function describeClaim(c: SyncClaim): string {
  return c.k === 0 ? "''" : `ANY ${c.k} (${c.members.join(', ')})`;
}
