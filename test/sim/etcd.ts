// The etcd model (docs/design.md, Quorum on etcd; "The simulator"): three members, one per simulated
// host as in the lab (db-a, db-b, witness), each running raft at etcd's defaults (a heartbeat every
// 100 ms, an election timeout of 1 s randomized to [1 s, 2 s) per election, CheckQuorum on, no
// pre-vote, as Debian's 3.4), and one linearizable store of keys, revisions and leases (FakeEtcd,
// the in-memory etcd the agent's unit tests hold to the contract tests, with its own expiry turned
// off: here only the raft leader's lessor ends leases).
//
// What is modelled at the level of raft's guarantees, not its messages: a leader commits (a txn, a
// grant, a revoke, a linearizable read's ReadIndex) only while it reaches a member of its term, and
// learns of a higher term (and steps down) the moment it reaches a member that holds one; committed
// state is never lost by an election. Leases: the leader counts each lease down on its own drifting
// monotonic clock from the last keepalive it received, and revokes the ones that ran out in a sweep
// every 500 ms (etcd's lessor); a new leader gives every lease its full TTL plus an election timeout.
// A keepalive is answered by whatever member believes it leads, without a quorum (etcd 3.4's
// defect): a deposed leader that has not noticed answers in its old raft term, and its countdown
// counts for nothing. Client traffic (agent ↔ member) crosses the simulated network with its delays,
// loss and cuts; members forward requests to the leader they follow. Faults of the host (crash, pause,
// isolation, partitions) hit the member on it; etcd faults of their own cut only etcd's ports.
import { etcdDefaultElectionTimeoutMs, etcdExpirySweepMs } from '@pgvip/shared/core';
import { FakeEtcd } from '../../packages/agent/src/quorum/etcd/fake.js';
import { clusterKeys, type ClusterKeys } from '../../packages/agent/src/quorum/etcd/keys.js';
import type { ClusterView } from '../../packages/agent/src/quorum/etcd/port.js';
import { encodeRecord, leaderRecordSchema, syncRecordSchema, termRecordSchema } from '../../packages/agent/src/quorum/etcd/records.js';
import type { Cmp, Op } from '../../packages/agent/src/quorum/etcd/txn-quorum.js';
import { viewKeys, viewOf } from '../../packages/agent/src/quorum/etcd/view.js';
import type { Checker } from './checker.js';
import type { Hosts, SimClock } from './clock.js';
import type { Network } from './network.js';
import type { Rng, RngStreams } from './rng.js';
import { HOSTS, type DbNode, type Host } from './schedule.js';

/** etcd's defaults, as the lab runs them. */
export const ETCD_HEARTBEAT_MS = 100;
export const ETCD_ELECTION_TIMEOUT_MS = etcdDefaultElectionTimeoutMs;
/** etcd's lessor looks for expired leases this often. */
const SWEEP_MS = etcdExpirySweepMs;
/** etcd raises a lease's TTL to 1.5 election timeouts. */
const MIN_TTL_S = Math.ceil((1.5 * ETCD_ELECTION_TIMEOUT_MS) / 1000);
export const SIM_ETCD_PREFIX = '/pgvip';

interface Member {
  readonly host: Host;
  /** Bumped by every crash, so events of an older process are dropped. */
  inc: number;
  /** The process runs (a killed member is down until restarted; its raft term survives on disk). */
  running: boolean;
  /** SIGSTOPs of the member only (freezes may overlap): work waits until it thaws. */
  frozen: number;
  backlog: { readonly raft: boolean; readonly inc: number; readonly fn: () => void }[];
  term: number;
  role: 'leader' | 'follower';
  /** The leader it follows (itself when leading), null while it knows none. */
  leader: Host | null;
  /** Real time it last heard from its leader (followers), or reached a quorum (leader). */
  lastHeardAt: number;
  /** A follower that hears nothing this long (real ms; randomized at each change of term or role) campaigns. */
  electionTimeout: number;
  /** As leader: each lease's end on this member's clock. */
  readonly expiry: Map<string, number>;
  nextSweepLocal: number;
  readonly rng: Rng;
}

/** What one client call asks of etcd. */
export type EtcdOp =
  | { readonly kind: 'keepalive'; readonly lease: string }
  | { readonly kind: 'read' }
  | { readonly kind: 'txn'; readonly compares: readonly Cmp[]; readonly success: readonly Op[] }
  | { readonly kind: 'grant'; readonly ttlS: number }
  | { readonly kind: 'revoke'; readonly lease: string };

export type EtcdAnswer =
  | { readonly kind: 'keepalive'; readonly ttlS: number; readonly raftTerm: string }
  | { readonly kind: 'read'; readonly view: ClusterView }
  | { readonly kind: 'txn'; readonly succeeded: boolean; readonly view: ClusterView }
  | { readonly kind: 'grant'; readonly lease: string; readonly ttlS: number }
  | { readonly kind: 'revoke' }
  /** The member's process is down on a host that is up: the connection is refused at once. */
  | { readonly kind: 'refused' };

export interface EtcdDeps {
  readonly clock: SimClock;
  readonly hosts: Hosts;
  readonly net: Network;
  readonly rngs: RngStreams;
  readonly check: Checker;
  readonly log: (who: string, text: string) => void;
  readonly replication: 'sync' | 'async';
  readonly leaseMs: number;
  readonly bootstrap: boolean;
  /** The leader key of `node` for `term` went with its lease's expiry (not a revoke or a txn). */
  readonly leaderKeyExpired: (node: string, term: number) => void;
  /**
   * The database nodes that may be promoted (not noFailover; default db-a and db-b): db-a starts as
   * primary, the others as its grantors and sync members (n-sim).
   */
  readonly nodes?: readonly DbNode[];
}

export class EtcdCluster {
  readonly keys: ClusterKeys = clusterKeys(SIM_ETCD_PREFIX, 'sim');
  /** The store: FakeEtcd with a clock that never moves, so only the leader's sweep ends a lease. */
  readonly #store = new FakeEtcd(() => 0);
  readonly #ttl = new Map<string, number>();
  readonly #m: Record<Host, Member>;
  /** etcd-only cuts (nftables on etcd's ports): between members, and from an agent to every member. */
  readonly #peerCut = new Map<string, number>();
  readonly #clientCut: Record<DbNode, number> = { 'db-a': 0, 'db-b': 0, 'db-c': 0 };
  readonly #slowReplies: Record<DbNode, number> = { 'db-a': 0, 'db-b': 0, 'db-c': 0 };
  readonly #isolatedFromClients = new Set<Host>();
  #termSeen = 0;

  constructor(private readonly d: EtcdDeps) {
    const first = HOSTS[d.rngs.get('etcd boot').int(0, HOSTS.length - 1)]!;
    const member = (host: Host): Member => ({
      host, inc: 0, running: true, frozen: 0, backlog: [], term: 2, role: host === first ? 'leader' : 'follower',
      leader: first, lastHeardAt: 0, electionTimeout: 0, expiry: new Map(), nextSweepLocal: SWEEP_MS,
      rng: d.rngs.get(`etcd ${host}`),
    });
    // Members on db-a, db-b and the witness host (HOSTS), as in the lab; db-c runs none.
    this.#m = { 'db-a': member('db-a'), 'db-b': member('db-b'), witness: member('witness') } as Record<Host, Member>;
    for (const m of Object.values(this.#m)) m.electionTimeout = this.#randomTimeout(m);
    if (!d.bootstrap) this.#seed();
  }

  /** db-a is primary of term 1 (as the witness model starts): the term record, and its key on a lease. */
  #seed(): void {
    const k = this.keys;
    const lease = this.#grant(this.ttlFor(this.d.leaseMs));
    // Three nodes: the term names its grantors, and sync starts as ANY 1 of both standbys (the setting
    // the simulated PostgreSQL starts with). Two nodes: the records as before.
    const standbys = (this.d.nodes ?? ['db-a', 'db-b']).filter((n) => n !== 'db-a');
    const grantors = standbys.length > 1 ? { grantors: standbys } : {};
    const ops: Op[] = [
      { kind: 'put', key: k.term, value: encodeRecord(termRecordSchema, { term: 1, primary: 'db-a', ...grantors }) },
      { kind: 'put', key: k.leader, value: encodeRecord(leaderRecordSchema, { node: 'db-a', term: 1 }), lease },
    ];
    if (this.d.replication === 'sync') {
      ops.push({ kind: 'put', key: k.sync, value: encodeRecord(syncRecordSchema, { members: standbys, k: 1, term: 1 }) });
    }
    this.#store.txn([], ops);
    this.#termSeen = 1;
  }

  start(): void {
    // The first leader counts the seeded lease from now.
    const l = this.#m[this.leader()!];
    for (const [id, ttlS] of this.#ttl) l.expiry.set(id, this.d.clock.local(l.host) + ttlS * 1000);
    this.d.log(`etcd ${l.host}`, `leader in raft term ${l.term}`);
    for (const h of HOSTS) this.#scheduleTick(this.#m[h]);
  }

  ttlFor(leaseMs: number): number {
    return Math.max(MIN_TTL_S, Math.ceil(leaseMs / 1000));
  }

  /** Who leads now (for the transcript and the faults), null while nobody does. */
  leader(): Host | null {
    const leaders = HOSTS.filter((h) => this.#m[h].role === 'leader' && this.#active(h));
    return leaders.sort((a, b) => this.#m[b].term - this.#m[a].term)[0] ?? null;
  }

  // --- faults ----------------------------------------------------------------------------------

  /** The member's process dies (kill -9); its raft log and term stay on disk. */
  crash(h: Host): void {
    const m = this.#m[h];
    if (m === undefined || !m.running) return;
    m.running = false;
    m.inc++;
    m.backlog = [];
    this.#demote(m, m.term);
    this.d.log(`etcd ${h}`, 'member down');
  }
  /** systemd starts the member again (if its host is up). */
  restart(h: Host): void {
    const m = this.#m[h];
    if (m === undefined || m.running || this.d.hosts.crashed(h)) return;
    m.running = true;
    m.leader = null;
    m.lastHeardAt = this.d.clock.t;
    m.electionTimeout = this.#randomTimeout(m);
    this.d.log(`etcd ${h}`, `member up (raft term ${m.term})`);
    this.#scheduleTick(m);
  }
  /** SIGSTOP of the member on h for durMs. */
  freeze(h: Host, durMs: number): void {
    const m = this.#m[h];
    m.frozen++;
    this.d.clock.after(durMs, () => {
      if (--m.frozen > 0) return;
      const backlog = m.backlog;
      m.backlog = [];
      // Thawed, it serves the requests that waited at once, while its raft loop looks again a
      // heartbeat later (as long as a new leader's heartbeat, which would depose it, takes): a leader
      // deposed meanwhile still believes it leads until then.
      let ticks = false;
      for (const b of backlog) {
        if (b.inc !== m.inc || !m.running) continue;
        if (b.raft) ticks = true;
        else this.d.hosts.run(h, b.fn);
      }
      if (ticks) this.#scheduleTick(m);
    });
  }
  /** SIGSTOP of whichever member leads etcd now, for durMs. */
  freezeLeader(durMs: number): Host | null {
    const l = this.leader();
    if (l !== null) this.freeze(l, durMs);
    return l;
  }
  /** Cut etcd's traffic between members a and b (both ways) for durMs. */
  cutPeers(a: Host, b: Host, durMs: number): void {
    const key = a < b ? `${a}|${b}` : `${b}|${a}`;
    this.#peerCut.set(key, (this.#peerCut.get(key) ?? 0) + 1);
    this.d.clock.after(durMs, () => this.#peerCut.set(key, (this.#peerCut.get(key) ?? 0) - 1));
  }
  /** Cut agent n's etcd client traffic to every member (its peer link stays) for durMs. */
  cutClient(n: DbNode, durMs: number): void {
    this.#clientCut[n]++;
    this.d.clock.after(durMs, () => this.#clientCut[n]--);
  }
  /** Isolate the member that leads now from the other members and from every client. */
  isolateLeader(durMs: number): Host | null {
    const l = this.leader();
    if (l === null) return null;
    for (const h of HOSTS) if (h !== l) this.cutPeers(l, h, durMs);
    this.#isolatedFromClients.add(l);
    this.d.clock.after(durMs, () => this.#isolatedFromClients.delete(l));
    return l;
  }
  /** etcd's answers to agent n arrive extraMs later for durMs. */
  slowReplies(n: DbNode, extraMs: number, durMs: number): void {
    this.#slowReplies[n] += extraMs;
    this.d.clock.after(durMs, () => (this.#slowReplies[n] -= extraMs));
  }
  /** An operator's etcdctl: put or delete the maintenance key, tried every second until etcd commits it. */
  setMaintenance(on: boolean): void {
    const k = this.keys.maintenance;
    const value = Buffer.from(JSON.stringify({ requestedBy: 'sim', reason: 'operator' }));
    const op: Op = on ? { kind: 'put', key: k, value } : { kind: 'delete', key: k };
    const attempt = (): void => {
      const l = this.leader();
      if (l !== null && this.#confirm(this.#m[l])) {
        this.#commit([], [op]);
        this.d.log('operator', `etcd: maintenance ${on ? 'on' : 'off'}`);
      } else {
        this.d.clock.after(1000, attempt);
      }
    };
    attempt();
  }
  /** The sync record's bytes as stored (null: none): the checker's I3 over the record (n-sim). */
  syncRecordBytes(): Buffer | null {
    return this.#store.read([this.keys.sync])[0]?.value ?? null;
  }
  /** The term record's primary, as an observer reads it (null: none). */
  termRecordPrimary(): DbNode | null {
    const raw = this.#store.read([this.keys.term])[0];
    if (raw === undefined) return null;
    const p = (JSON.parse(raw.value.toString('utf8')) as { primary: string }).primary;
    return p === 'db-a' || p === 'db-b' || p === 'db-c' ? p : null;
  }

  // --- client calls ------------------------------------------------------------------------------

  /**
   * Agent n sends `op` to the member on `to`; `answer` runs on n's host when (if) the answer arrives.
   * The member forwards it to the leader it follows; the leader serves it (a commit or a ReadIndex
   * needs a member of its term), and the answer goes back the same way.
   */
  call(n: DbNode, to: Host, op: EtcdOp, answer: (a: EtcdAnswer) => void): void {
    if (!this.#clientLink(n, to)) return;
    this.d.net.transmit(n, to, 'request', () => {
      const e = this.#m[to];
      if (!e.running) return this.#reply(n, to, { kind: 'refused' }, answer);
      this.#onMember(e, () => this.#atMember(e, n, op, answer));
    });
  }
  #clientLink(n: DbNode, member: Host): boolean {
    return this.#clientCut[n] === 0 && !this.#isolatedFromClients.has(member);
  }
  #reply(n: DbNode, from: Host, a: EtcdAnswer, answer: (a: EtcdAnswer) => void): void {
    if (!this.#clientLink(n, from)) return;
    const send = () => this.d.net.transmit(from, n, 'reply', () => answer(a));
    const extra = this.#slowReplies[n];
    if (extra > 0) this.d.clock.after(extra, send);
    else send();
  }
  #atMember(e: Member, n: DbNode, op: EtcdOp, answer: (a: EtcdAnswer) => void): void {
    const l = e.role === 'leader' ? e : e.leader === null ? null : this.#m[e.leader];
    // No leader known (an election): the request waits, and the client's deadline ends it.
    if (l === null) return;
    if (l !== e && !this.#peerLink(e.host, l.host)) return;
    const served = (a: EtcdAnswer): void => this.#reply(n, e.host, a, answer);
    this.#onMember(l, () => {
      if (l.role !== 'leader' || (l !== e && !this.#peerLink(e.host, l.host))) return;
      const a = this.#serve(l, e, op);
      if (a !== null) served(a);
    });
  }
  /** The leader l serves op that member e received; null: it cannot (no quorum), the call hangs. */
  #serve(l: Member, e: Member, op: EtcdOp): EtcdAnswer | null {
    if (op.kind === 'keepalive') {
      // etcd 3.4 renews on whatever member thinks it leads, without asking a quorum.
      const ttlS = this.#ttl.get(op.lease);
      if (ttlS === undefined) return { kind: 'keepalive', ttlS: 0, raftTerm: String(e.term) };
      l.expiry.set(op.lease, this.d.clock.local(l.host) + ttlS * 1000);
      if (HOSTS.some((h) => this.#m[h].role === 'leader' && this.#m[h].term > l.term)) {
        this.d.log(`etcd ${l.host}`, `deposed, not knowing it: renews lease ${op.lease} in raft term ${l.term}`);
      }
      return { kind: 'keepalive', ttlS, raftTerm: String(e.term) };
    }
    if (!this.#confirm(l)) return null;
    switch (op.kind) {
      case 'read':
        return { kind: 'read', view: this.#view(e) };
      case 'txn': {
        const succeeded = this.#commit(op.compares, op.success);
        return { kind: 'txn', succeeded, view: this.#view(e) };
      }
      case 'grant': {
        const lease = this.#grant(op.ttlS);
        l.expiry.set(lease, this.d.clock.local(l.host) + op.ttlS * 1000);
        return { kind: 'grant', lease, ttlS: op.ttlS };
      }
      case 'revoke':
        this.#revoke(op.lease);
        return { kind: 'revoke' };
    }
  }
  /** The last view built: a view is immutable, and most reads see the revision and raft term of the one before. */
  #lastView: ClusterView | null = null;
  #view(answering: Member): ClusterView {
    const s = this.#store;
    const raftTerm = String(answering.term);
    const revision = String(s.revision);
    const last = this.#lastView;
    if (last !== null && last.raftTerm === raftTerm && last.revision === revision) return last;
    const positions = s.range(this.keys.positionsPrefix);
    return (this.#lastView = viewOf(this.keys, raftTerm, revision, s.read(viewKeys(this.keys)), positions));
  }

  // --- the store ---------------------------------------------------------------------------------

  #grant(ttlS: number): string {
    const id = this.#store.grant(ttlS);
    this.#ttl.set(id, ttlS);
    return id;
  }
  #revoke(id: string): void {
    if (!this.#ttl.delete(id)) return;
    this.#store.revoke(id);
    for (const m of Object.values(this.#m)) m.expiry.delete(id);
  }
  #commit(compares: readonly Cmp[], success: readonly Op[]): boolean {
    const ok = this.#store.txn(compares, success);
    if (ok) this.#termMoved();
    return ok;
  }
  /**
   * The checker learns every term the term record takes (I7), and that no campaign wins one in
   * maintenance (I4; a handover, which leaves no leader key, may: as on the witness).
   */
  #termMoved(): void {
    const [term, maintenance, leader] = this.#store.read([this.keys.term, this.keys.maintenance, this.keys.leader]);
    if (term === undefined) return;
    const t = (JSON.parse(term.value.toString('utf8')) as { term: number }).term;
    if (t === this.#termSeen) return;
    if (t < this.#termSeen) this.d.check.violation(`I2: etcd's term record went from ${this.#termSeen} to ${t}`);
    this.#termSeen = t;
    this.d.check.termCreated(t);
    this.d.log('etcd', `term record: term ${t}`);
    if (maintenance !== undefined && leader !== undefined) {
      this.d.check.violation(`I4: a campaign moved etcd's term record to ${t} while the cluster is in maintenance`);
    }
  }

  // --- raft --------------------------------------------------------------------------------------

  /** Whether h's member runs now (process up, host up and not paused, not frozen). */
  #active(h: Host): boolean {
    const m = this.#m[h];
    return m.running && m.frozen === 0 && !this.d.hosts.crashed(h) && !this.d.hosts.paused(h);
  }
  #peerLink(a: Host, b: Host): boolean {
    const key = a < b ? `${a}|${b}` : `${b}|${a}`;
    return (this.#peerCut.get(key) ?? 0) === 0 && this.d.net.linkUp(a, b) && this.d.net.linkUp(b, a);
  }
  /** Runs fn as the member's process: dropped if it is down, deferred while its host is paused or it is frozen. */
  #onMember(m: Member, fn: () => void, raft = false): void {
    const inc = m.inc;
    this.d.hosts.run(m.host, () => {
      if (!m.running || m.inc !== inc) return;
      if (m.frozen > 0) m.backlog.push({ raft, inc, fn });
      else fn();
    });
  }
  /**
   * The member's next look: a leader's heartbeat round every 100 ms; a follower looks when its
   * election timeout would run out (again later if it heard from its leader meanwhile).
   */
  #scheduleTick(m: Member): void {
    const inc = m.inc;
    const { clock } = this.d;
    const beat = clock.realDelay(m.host, ETCD_HEARTBEAT_MS);
    const delay = m.role === 'leader' ? beat : Math.max(beat, m.lastHeardAt + m.electionTimeout - clock.t);
    clock.after(delay, () => this.#onMember(m, () => {
      if (m.inc !== inc) return;
      this.#tick(m);
      this.#scheduleTick(m);
    }, true));
  }
  #randomTimeout(m: Member): number {
    return this.d.clock.realDelay(m.host, ETCD_ELECTION_TIMEOUT_MS * (1 + m.rng.next()));
  }
  #tick(m: Member): void {
    const now = this.d.clock.t;
    if (m.role === 'leader') {
      if (this.#confirm(m)) {
        if (this.d.clock.local(m.host) >= m.nextSweepLocal) this.#sweep(m);
      } else if (m.role === 'leader' && now - m.lastHeardAt >= this.d.clock.realDelay(m.host, ETCD_ELECTION_TIMEOUT_MS)) {
        // CheckQuorum: a leader that reached no member for an election timeout steps down.
        this.#demote(m, m.term);
        this.d.log(`etcd ${m.host}`, `lost its quorum: steps down in raft term ${m.term}`);
      }
      return;
    }
    if (now >= m.lastHeardAt + m.electionTimeout) this.#campaign(m);
  }
  /**
   * The leader's heartbeat round (also a commit's and a ReadIndex's): true when a member of its term
   * answered. A member with a higher term makes it step down at once.
   */
  #confirm(l: Member): boolean {
    if (l.role !== 'leader') return false;
    let reached = false;
    for (const h of HOSTS) {
      const g = this.#m[h];
      if (g === l || !this.#active(h) || !this.#peerLink(l.host, h)) continue;
      if (g.term > l.term) {
        this.d.log(`etcd ${l.host}`, `saw raft term ${g.term} on ${h}: steps down from ${l.term}`);
        this.#demote(l, g.term);
        return false;
      }
      this.#follow(g, l);
      reached = true;
    }
    if (reached) l.lastHeardAt = this.d.clock.t;
    return reached;
  }
  #follow(g: Member, l: Member): void {
    if (g.role === 'leader' && g !== l) this.#demote(g, l.term);
    if (g.term !== l.term || g.leader !== l.host) g.electionTimeout = this.#randomTimeout(g);
    g.term = l.term;
    g.leader = l.host;
    g.lastHeardAt = this.d.clock.t;
  }
  #demote(m: Member, term: number): void {
    m.role = 'follower';
    m.term = Math.max(m.term, term);
    m.leader = null;
    m.expiry.clear();
    m.lastHeardAt = this.d.clock.t;
    m.electionTimeout = this.#randomTimeout(m);
  }
  #campaign(c: Member): void {
    const now = this.d.clock.t;
    c.term++;
    c.leader = null;
    c.lastHeardAt = now;
    c.electionTimeout = this.#randomTimeout(c);
    const voters: Member[] = [];
    for (const h of HOSTS) {
      const g = this.#m[h];
      if (g === c || !this.#active(h) || !this.#peerLink(c.host, h)) continue;
      // A member already in this raft term voted in it (or followed its leader): raft's votedFor,
      // kept on disk, refuses a second candidate of the same term. Two leaders of one raft term
      // would let a deposed one's lease sweep pass for the real leader's.
      if (g.term >= c.term) {
        c.term = g.term;
        continue;
      }
      // CheckQuorum's leader lease: a member that heard from its leader within an election timeout
      // (or leads) ignores the vote, and keeps its term.
      const inLease = g.leader !== null && now - g.lastHeardAt < this.d.clock.realDelay(h, ETCD_ELECTION_TIMEOUT_MS);
      if (inLease) continue;
      g.term = c.term;
      g.leader = null;
      if (g.role === 'leader') this.#demote(g, c.term);
      voters.push(g);
    }
    if (voters.length === 0) return;
    c.role = 'leader';
    c.leader = c.host;
    c.lastHeardAt = now;
    // etcd's lessor promotion: every lease gets its full TTL again, plus an election timeout.
    const local = this.d.clock.local(c.host);
    c.expiry.clear();
    for (const [id, ttlS] of this.#ttl) c.expiry.set(id, local + ttlS * 1000 + ETCD_ELECTION_TIMEOUT_MS);
    c.nextSweepLocal = local + SWEEP_MS;
    for (const g of voters) this.#follow(g, c);
    this.d.log(`etcd ${c.host}`, `elected leader in raft term ${c.term}`);
  }
  /** The lessor's sweep: revoke (through raft: the caller confirmed a quorum) the leases that ran out. */
  #sweep(l: Member): void {
    const local = this.d.clock.local(l.host);
    l.nextSweepLocal = local + SWEEP_MS;
    for (const [id, until] of [...l.expiry]) {
      if (local < until) continue;
      const key = this.#store.read([this.keys.leader])[0];
      this.#revoke(id);
      this.d.log(`etcd ${l.host}`, `lease ${id} expired`);
      if (key?.lease === id) {
        const held = JSON.parse(key.value.toString('utf8')) as { node: string; term: number };
        this.d.leaderKeyExpired(held.node, held.term);
      }
    }
  }
}
