// pgvip's keys in the lab's etcd, seen by the lab itself rather than through the daemons: with
// `quorum.backend: etcd` (docs/etcd.md) etcd is the cluster's source of truth on the term and the
// leader, so the lab reads it directly (docs/design.md, "Quorum on etcd", Keys):
//
//   readPgvipKeys()  one linearizable range read of <prefix>/<cluster>/ through etcd's JSON gateway,
//                    asked from inside the VPC (the router namespace), from the first member that answers;
//                    the healthy check compares it with the agents' own view (etcdKeyProblems)
//   EtcdKeyWatch     `etcdctl watch` on the client host: every put and delete of the leader, term, sync,
//                    maintenance and switchover keys, stamped when the lab received it; the failover
//                    timelines name etcd's own steps from it ("db-a's leader key gone", "db-b took it")
//
// Values are parsed leniently (the lab reports what is there; the agents' zod schemas in
// packages/agent/src/quorum/etcd/records.ts decide what is believed).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { onHost } from './exec.js';

export interface LeaderKey {
  readonly node: string;
  readonly term: number;
  /** The etcd lease the key lives on (decimal; int64). */
  readonly lease: string;
}

/** A standby's final position, published when it withdrew for an election (three or more nodes). */
export interface PositionKey {
  readonly term: number;
  readonly timeline: number;
  readonly flushLsn: string;
}

export interface SyncRecord {
  readonly standby: string | null;
  readonly term: number;
  readonly members?: readonly string[];
  readonly k?: number;
}

export interface PgvipEtcdKeys {
  readonly leader: LeaderKey | null;
  /** The term record; `grantors` (three or more nodes) when the record names them. */
  readonly term: { readonly term: number; readonly primary: string; readonly grantors?: readonly string[] } | null;
  /**
   * In sync mode, the standby etcd names as the one that may be promoted (null: degraded, or no record).
   * The claim form `{members, k, term}` is read as `members` and `k`; its `standby` is the one member
   * of an `ANY 1` claim of one (a two-node cluster), the old form `{standby, term}` as ANY 1 (standby).
   */
  readonly sync: SyncRecord | null;
  /** Published positions under position/ (three or more nodes), by node. */
  readonly positions?: Readonly<Record<string, PositionKey>>;
  readonly maintenance: boolean;
  readonly switchover: boolean;
  /** Nodes with a status under members/ (each on its own lease). */
  readonly members: readonly string[];
}

/**
 * The keys a watch reports, relative to `<prefix>/<cluster>/` (members/ are left out: one put per
 * heartbeat); "position" stands for every key under position/ (three or more nodes), with its node.
 */
export const watchedKeys = ['leader', 'term', 'sync', 'maintenance', 'switchover', 'position'] as const;
export type WatchedKey = (typeof watchedKeys)[number];

/** `<prefix>/<cluster>/`, as packages/agent/src/quorum/etcd/keys.ts builds it. */
export function clusterKeyBase(prefix: string, cluster: string): string {
  return `${prefix}/${cluster}/`;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: unknown): string => (typeof s === 'string' ? Buffer.from(s, 'base64').toString('utf8') : '');

function json(text: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** etcd's range_end for every key under `base` (which ends in '/'). */
function rangeEnd(base: string): string {
  const end = Buffer.from(base, 'utf8');
  end[end.length - 1] = (end[end.length - 1] ?? 0) + 1;
  return end.toString('base64');
}

/**
 * The gateway's reply to a range over `<base>` as pgvip's keys. etcd's JSON gateway writes int64s as
 * strings and bytes in base64.
 */
export function parseRangeReply(body: string, base: string): PgvipEtcdKeys {
  const reply = json(body);
  const kvs = Array.isArray(reply?.kvs) ? (reply.kvs as Array<Record<string, unknown>>) : [];
  const byKey = new Map<string, { value: Record<string, unknown> | null; lease: string }>();
  for (const kv of kvs) {
    const key = unb64(kv.key);
    if (!key.startsWith(base)) continue;
    byKey.set(key.slice(base.length), { value: json(unb64(kv.value)), lease: String(kv.lease ?? '0') });
  }
  const leader = byKey.get('leader');
  const term = byKey.get('term')?.value;
  const sync = byKey.get('sync')?.value;
  return {
    leader: leader?.value == null
      ? null
      : { node: String(leader.value.node), term: Number(leader.value.term), lease: leader.lease },
    term: term == null
      ? null
      : {
        term: Number(term.term),
        primary: String(term.primary),
        ...(Array.isArray(term.grantors) ? { grantors: term.grantors.map(String) } : {}),
      },
    sync: sync == null ? null : syncOf(sync),
    positions: Object.fromEntries([...byKey.entries()].filter(([k, v]) => k.startsWith('position/') && v.value !== null).map(([k, v]) => [
      k.slice('position/'.length),
      { term: Number(v.value!.term), timeline: Number(v.value!.timeline), flushLsn: String(v.value!.flushLsn) },
    ])),
    maintenance: byKey.has('maintenance'),
    switchover: byKey.has('switchover'),
    members: [...byKey.keys()].filter((k) => k.startsWith('members/')).map((k) => k.slice('members/'.length)).sort(),
  };
}

/** The sync record in either form: the claim `{members, k, term}` or the old `{standby, term}`. */
function syncOf(v: Record<string, unknown>): SyncRecord {
  if (Array.isArray(v.members)) {
    const members = v.members.map(String);
    const k = Number(v.k);
    return { standby: members.length === 1 && k >= 1 ? members[0]! : null, term: Number(v.term), members, k };
  }
  const standby = typeof v.standby === 'string' ? v.standby : null;
  return { standby, term: Number(v.term), members: standby === null ? [] : [standby], k: standby === null ? 0 : 1 };
}

/** An HTTP client from inside the VPC (the lab's emulator.http). */
export type VpcHttp = (
  url: string,
  init: { method: 'POST'; headers: Record<string, string>; body: string; timeoutMs: number },
) => Promise<{ status: number; body: string }>;

/**
 * One linearizable read of the cluster's keys, asked of every member at once, the first answer taken
 * (a member without quorum, frozen or cut off does not answer within `timeoutMs`); null when none does.
 */
export async function readPgvipKeys(
  http: VpcHttp,
  endpoints: readonly string[],
  prefix: string,
  cluster: string,
  timeoutMs = 1_000,
): Promise<PgvipEtcdKeys | null> {
  const base = clusterKeyBase(prefix, cluster);
  const body = JSON.stringify({ key: b64(base), range_end: rangeEnd(base) });
  const headers = { 'content-type': 'application/json' };
  const ask = async (endpoint: string): Promise<PgvipEtcdKeys> => {
    const r = await http(`${endpoint}/v3/kv/range`, { method: 'POST', headers, body, timeoutMs });
    if (r.status !== 200) throw new Error(`${endpoint}: HTTP ${r.status}`);
    return parseRangeReply(r.body, base);
  };
  return Promise.any(endpoints.map(ask)).catch(() => null);
}

/**
 * What keeps etcd from agreeing with a healthy cluster of `primary` and `standby` at `term`: the leader
 * key names the primary in that term, the term record names them too, and in sync mode the sync
 * record names the standby.
 */
export function etcdKeyProblems(
  keys: PgvipEtcdKeys | null,
  expected: {
    primary: string;
    standby: string;
    term: number;
    sync: boolean;
    standbys?: readonly string[];
    noFailover?: readonly string[];
  },
): string[] {
  if (keys === null) return ['etcd does not answer a read of pgvip\'s keys (no member with quorum)'];
  const problems: string[] = [];
  const { primary, standby, term } = expected;
  if (keys.leader === null) problems.push(`etcd holds no leader key (the primary ${primary} of term ${term} should)`);
  else if (keys.leader.node !== primary || keys.leader.term !== term) problems.push(`etcd's leader key names ${keys.leader.node} in term ${keys.leader.term}, not ${primary} in term ${term}`);
  if (keys.term === null) problems.push('etcd holds no term record');
  else if (keys.term.term !== term || keys.term.primary !== primary) problems.push(`etcd's term record is term ${keys.term.term} for ${keys.term.primary}, not term ${term} for ${primary}`);
  const standbys = expected.standbys ?? [standby];
  if (expected.sync && standbys.length > 1) {
    // Three or more nodes: the record claims ANY k (k ≥ 1) of exactly the eligible standbys (all stream).
    const eligible = standbys.filter((n) => !(expected.noFailover ?? []).includes(n)).sort();
    const members = [...(keys.sync?.members ?? [])].sort();
    if ((keys.sync?.k ?? 0) < 1 || members.join() !== eligible.join()) {
      problems.push(`etcd's sync record claims ANY ${keys.sync?.k ?? 0} (${members.join(', ')}), not ANY k ≥ 1 of the eligible standbys (${eligible.join(', ')})`);
    }
  } else if (expected.sync && keys.sync?.standby !== standby) problems.push(`etcd's sync record names ${keys.sync?.standby ?? 'nobody'}, not the synchronous standby ${standby}`);
  return problems;
}

export interface KeyEvent {
  /** When the lab received it (ms, the machine's clock, as the daemons' logs). */
  readonly atMs: number;
  readonly type: 'put' | 'delete';
  readonly key: WatchedKey;
  /** The value put (parsed JSON), null for a delete. */
  readonly value: Record<string, unknown> | null;
  /** The node of a position/<node> key. */
  readonly node?: string;
}

/** One line of `etcdctl watch -w json` (one watch response) as the events on the watched keys. */
export function parseWatchLine(line: string, base: string, atMs: number): KeyEvent[] {
  // Lease ids and revisions are int64 numbers in this output: JSON.parse rounds them, which no event
  // here needs exactly.
  const response = json(line);
  const events = Array.isArray(response?.Events) ? (response.Events as Array<Record<string, unknown>>) : [];
  const out: KeyEvent[] = [];
  for (const e of events) {
    const kv = (e.kv ?? {}) as Record<string, unknown>;
    const key = unb64(kv.key);
    if (!key.startsWith(base)) continue;
    const rel = key.slice(base.length);
    const position = rel.startsWith('position/') ? rel.slice('position/'.length) : null;
    if (position === null && (rel === 'position' || !(watchedKeys as readonly string[]).includes(rel))) continue;
    // etcd's mvccpb.Event: type 0 (PUT, left out of the JSON as a default) or 1 (DELETE).
    const type = e.type === 1 || e.type === 'DELETE' ? 'delete' : 'put';
    const value = type === 'put' ? json(unb64(kv.value)) : null;
    out.push(position === null ? { atMs, type, key: rel as WatchedKey, value } : { atMs, type, key: 'position', value, node: position });
  }
  return out;
}

/**
 * `etcdctl watch --prefix <prefix>/<cluster>/` run on the client host against one member, with every
 * event stamped on arrival. Its keepalive (1 s, 2 s to answer) ends a connection that stopped
 * answering; should etcdctl exit, the watch starts again after the last revision it saw, so it stays
 * complete, only late.
 */
export class EtcdKeyWatch {
  readonly events: KeyEvent[] = [];
  readonly #endpoint: string;
  readonly #base: string;
  #child: ChildProcess | null = null;
  #lastRevision = 0;
  #stopped = false;

  constructor(endpoint: string, prefix: string, cluster: string) {
    this.#endpoint = endpoint;
    this.#base = clusterKeyBase(prefix, cluster);
    this.#spawn();
  }

  #spawn(): void {
    const from = this.#lastRevision > 0 ? [`--rev=${this.#lastRevision + 1}`] : [];
    const argv = [
      '/usr/bin/etcdctl', `--endpoints=${this.#endpoint}`, '--keepalive-time=1s', '--keepalive-timeout=2s',
      'watch', '--prefix', this.#base, ...from, '-w', 'json',
    ];
    const [file, ...args] = onHost('client', argv, { cgroup: false });
    const child = spawn(file!, args, { env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'pipe', 'ignore'] });
    this.#child = child;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.events.push(...parseWatchLine(line, this.#base, Date.now()));
      const revision = Number(/"revision":(\d+)/.exec(line)?.[1] ?? 0);
      if (revision > this.#lastRevision) this.#lastRevision = revision;
    });
    child.on('error', () => undefined);
    child.on('exit', () => {
      if (!this.#stopped) setTimeout(() => this.#stopped || this.#spawn(), 500).unref();
    });
  }

  /** Events on `key` since `fromMs`, oldest first. */
  since(fromMs: number, key?: WatchedKey): KeyEvent[] {
    return this.events.filter((e) => e.atMs >= fromMs && (key === undefined || e.key === key));
  }

  stop(): void {
    this.#stopped = true;
    if (this.#child?.exitCode === null) this.#child.kill('SIGKILL');
  }
}
