// The PostgreSQL model of db-a and db-b: LSNs, a client writing through the VIP, streaming and
// synchronous-commit acks, the WAL receiver, promotion onto a new timeline (with its history),
// fencing, disk stalls and rewind. It reports what happened to the checker (acks, promotions).
import type { Effect, EffectResult, PgSnapshot, WriteProbe } from '@pgvip/shared/core';
import type { Checker } from './checker.js';
import type { Hosts, SimClock } from './clock.js';
import type { Finish } from './ec2.js';
import type { Network } from './network.js';
import type { RngStreams } from './rng.js';
import { DB_NODES, type DbNode } from './schedule.js';

const WRITE_EVERY_MS = 100;
const PUMP_EVERY_MS = 25;
const STREAM_FRESH_MS = 1000;
const COMMIT_TIMEOUT_MS = 2000;
/** How long the agent's shell lets pg_ctl restart run before it reports a failure. */
const RESTART_BOUND_MS = 30_000;
export const WRITE_BYTES = 100n;
const other = (n: DbNode): DbNode => (n === 'db-a' ? 'db-b' : 'db-a');

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
  ssn: DbNode | null;
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
}

export class Postgres {
  readonly pg: Record<DbNode, PgModel>;
  readonly acks: AckRecord[] = [];
  readonly promotions: PromotionRecord[] = [];
  writesAttempted = 0;

  constructor(private readonly d: PostgresDeps) {
    const mkPg = (primary: boolean): PgModel => ({
      running: true, inRecovery: !primary, readOnly: false, timeline: 1, history: new Map(), lsn: 1000n,
      receiverOn: !primary, lastStreamAt: 0, caughtUpAt: 0, ssn: primary && d.replication === 'sync' ? 'db-b' : null,
      stalledUntil: 0, vetoUntil: 0, pending: [], plannedRestart: null,
    });
    this.pg = { 'db-a': mkPg(true), 'db-b': mkPg(false) };
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
    const fresh = this.d.clock.t - p.lastStreamAt <= STREAM_FRESH_MS && p.lastStreamAt > 0;
    return p.running && p.inRecovery && p.receiverOn && fresh;
  }
  /** What the agent's check of its PostgreSQL sees. */
  snapshot(n: DbNode): PgSnapshot {
    const p = this.pg[n];
    if (!p.running) {
      return {
        running: false, inRecovery: false, writable: false, timeline: 0, lsn: 0n, replayLsn: 0n,
        streaming: false, syncStandby: null, standbyInSync: false,
      };
    }
    const s = other(n);
    const standbyInSync = !p.inRecovery && p.ssn === s && this.streaming(s) &&
      this.d.clock.t - this.pg[s].caughtUpAt <= 2 * PUMP_EVERY_MS;
    return {
      running: true,
      inRecovery: p.inRecovery,
      writable: !p.inRecovery && !p.readOnly,
      timeline: p.timeline,
      lsn: p.lsn,
      replayLsn: p.lsn,
      streaming: this.streaming(n),
      syncStandby: p.inRecovery ? null : p.ssn,
      standbyInSync,
    };
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
  /** PostgreSQL stops (crash, kill -9): its waiting commits are gone. */
  down(n: DbNode): void {
    const p = this.pg[n];
    p.running = false;
    p.pending = [];
  }

  /** Streaming replication, every PUMP_EVERY_MS: standbys catch up, sync commits get acknowledged. */
  #pump(): void {
    const { clock, net } = this.d;
    for (const s of DB_NODES) {
      const sp = this.pg[s];
      const u = other(s);
      const up = this.pg[u];
      if (!sp.running || !sp.inRecovery || !sp.receiverOn || !this.usable(s) || this.stalled(s)) continue;
      if (!this.usable(u) || up.inRecovery || up.timeline !== sp.timeline) continue;
      if (!net.linkUp(u, s) || !net.linkUp(s, u)) continue;
      if (net.lost(u, s)) continue;
      if (up.lsn > sp.lsn) sp.lsn = up.lsn;
      sp.lastStreamAt = clock.t;
      if (sp.lsn >= up.lsn) sp.caughtUpAt = clock.t;
      if (up.ssn === s && up.pending.length > 0) {
        const keep: PgModel['pending'] = [];
        for (const c of up.pending) {
          if (c.lsn <= sp.lsn) this.#ack(u, c.lsn);
          else keep.push(c);
        }
        up.pending = keep;
      }
    }
    for (const n of DB_NODES) {
      const p = this.pg[n];
      if (p.pending.length > 0 && clock.t - p.pending[0]!.issuedAt > COMMIT_TIMEOUT_MS) {
        p.pending = p.pending.filter((c) => clock.t - c.issuedAt <= COMMIT_TIMEOUT_MS);
      }
    }
    clock.after(PUMP_EVERY_MS, () => this.#pump());
  }
  #ack(n: DbNode, lsn: bigint): void {
    const tl = this.pg[n].timeline;
    this.acks.push({ t: this.d.clock.t, node: n, timeline: tl, lsn });
    this.d.check.acked(n, tl);
  }
  /** The client writes through the VIP every WRITE_EVERY_MS. */
  #clientWrite(): void {
    this.writesAttempted++;
    const n = this.d.routed();
    if (n !== null && this.d.net.linkUp('client', n) && this.usable(n) && !this.stalled(n)) {
      const p = this.pg[n];
      if (!p.inRecovery && !p.readOnly) {
        p.lsn += WRITE_BYTES;
        if (p.ssn !== null) p.pending.push({ lsn: p.lsn, issuedAt: this.d.clock.t });
        else this.#ack(n, p.lsn);
      }
    }
    this.d.clock.after(WRITE_EVERY_MS, () => this.#clientWrite());
  }
  #preserved(n: DbNode, a: AckRecord): boolean {
    const p = this.pg[n];
    if (a.timeline === p.timeline) return a.lsn <= p.lsn;
    const end = p.history.get(a.timeline);
    return end !== undefined && a.lsn <= end;
  }
  /** pg_promote() on n, asked for by the agent in `term`. */
  #promote(n: DbNode, term: number): Omit<EffectResult, 'id'> {
    const p = this.pg[n];
    // As the agent's runner does: the hook runs before pg_promote() and its veto is a failed promote.
    if (this.d.clock.t < p.vetoUntil) return { ok: false, detail: 'vetoed by the before-promote hook (exited 1)' };
    if (!p.running) return { ok: false, detail: 'postgresql not running' };
    if (!p.inRecovery) return { ok: true, detail: 'already primary' };
    const maxTl = Math.max(this.pg['db-a'].timeline, this.pg['db-b'].timeline);
    this.d.check.promoting(n, p.receiverOn, p.timeline, maxTl);
    p.history.set(p.timeline, p.lsn);
    p.timeline = maxTl + 1;
    p.inRecovery = false;
    p.receiverOn = false;
    p.ssn = null;
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
          p.ssn = e.standby as DbNode | null;
          if (p.ssn === null) {
            for (const c of p.pending) this.#ack(n, c.lsn);
            p.pending = [];
          }
          return { ok: true, detail: `synchronous_standby_names=${e.standby ?? ''}` };
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
      p.lastStreamAt = 0;
      p.pending = [];
      this.d.log(n, `rewound and restarted as a standby of ${src} on timeline ${sp.timeline}`);
      return { ok: true, detail: 'pg_rewind' };
    });
  }
}
