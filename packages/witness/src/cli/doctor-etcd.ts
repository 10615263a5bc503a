// `pgvip doctor`'s etcd checks, when the cluster block has a quorum.etcd block (the backend, or one
// being prepared for a move from the witness; docs/etcd.md). What a node needs of etcd, proven from
// this host while nothing is at stake:
//   - each endpoint answers (TCP, the TLS handshake against quorum.etcd.tls.caFile, etcd's gRPC API),
//     and how long a round trip takes (warned above etcdRttWarnMs);
//   - the endpoints name members of one cluster, which has a leader that every member follows;
//   - the user and password (or client certificate) may write, read and delete under the prefix: a
//     probe key <prefix>/<cluster>/doctor-probe/<node>, removed again.
// Every call has its own deadline and each check a bound on the whole, so an endpoint that swallows
// packets costs at most one timeout. The etcd3 client (gRPC) is loaded only when there is a block.
import { randomBytes } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import {
  daysLeft,
  isPgvipError,
  loadCaFile,
  loadTlsMaterial,
  readSecretFile,
  type ClusterConfig,
  type EtcdConfig,
} from '@pgvip/shared';
import type { Etcd3, IOptions } from 'etcd3';
import type { Check } from './doctor.js';

/**
 * Round trips above this are warned about. pgvip renews its etcd lease every heartbeat and counts its
 * validity from the send time, so every millisecond of round trip is taken from the renewal margin;
 * etcd's own tuning guide puts members within about this much of each other as well.
 */
export const etcdRttWarnMs = 50;
/** Round trips measured per endpoint; the median is reported. */
const rttSamples = 3;

type Failure = { readonly ok: false; readonly why: string; readonly kind: FailureKind };
type Outcome<T> = { readonly ok: true; readonly value: T } | Failure;
type FailureKind = 'unreachable' | 'timeout' | 'tls' | 'auth' | 'permission' | 'other';

/** What an etcd3/gRPC error means for an operator. */
export function classifyEtcdError(err: unknown): { kind: FailureKind; why: string } {
  const e = err as { name?: string; message?: string; details?: string };
  const name = e.name ?? 'Error';
  const message = (e.message ?? String(err)).split('\n')[0]!;
  if (/PermissionDenied/.test(name) || /permission denied/i.test(message)) return { kind: 'permission', why: message };
  if (/AuthenticationFailed|UserNotFound|InvalidAuthToken|Unauthenticated/.test(name) || /authentication failed|user name not found|invalid auth token/i.test(message)) {
    return { kind: 'auth', why: message };
  }
  if (/certificate|SSL|TLS|handshake|self.signed|unable to verify|wrong version number/i.test(message)) return { kind: 'tls', why: message };
  if (/DeadlineExceeded/.test(name) || /deadline exceeded|timed out/i.test(message)) return { kind: 'timeout', why: message };
  if (/Unavailable|ConnectFailed/.test(name) || /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|No connection established|connect/i.test(message)) {
    return { kind: 'unreachable', why: message };
  }
  return { kind: 'other', why: `${name}: ${message}` };
}

async function bounded<T>(ms: number, what: () => Promise<T>): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<Outcome<T>>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, kind: 'timeout', why: `no answer within ${ms} ms` }), ms);
  });
  try {
    return await Promise.race([
      what().then(
        (value): Outcome<T> => ({ ok: true, value }),
        (err: unknown): Outcome<T> => ({ ok: false, ...classifyEtcdError(err) }),
      ),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

interface ClientMaterial {
  readonly credentials?: IOptions['credentials'];
  readonly auth?: IOptions['auth'];
}

/** The files the etcd block names, read as the daemon will: a problem becomes a failed check. */
async function clientMaterial(etcd: EtcdConfig, field: string, checks: Check[]): Promise<ClientMaterial | null> {
  const material: { credentials?: IOptions['credentials']; auth?: IOptions['auth'] } = {};
  try {
    const tls = etcd.tls;
    if (etcd.endpoints[0]!.startsWith('https://')) {
      // Without caFile the system's CAs, as the description of quorum.etcd.tls.caFile says.
      const ca = tls?.caFile === undefined ? rootCertificates.join('\n') : await loadCaFile(tls.caFile, `${field}.tls.caFile`);
      material.credentials = { rootCertificate: Buffer.from(ca) };
      if (tls?.certFile !== undefined && tls.keyFile !== undefined) {
        const m = await loadTlsMaterial({ certFile: tls.certFile, keyFile: tls.keyFile }, `${field}.tls`);
        const ssl = { certChain: Buffer.from(m.cert), privateKey: Buffer.from(m.key) };
        material.credentials = { rootCertificate: Buffer.from(ca), ...ssl };
        const days = Math.floor(daysLeft(m));
        if (days < 30) {
          checks.push({
            status: 'fail',
            title: 'etcd client certificate',
            detail: `${tls.certFile} ${days < 0 ? 'has EXPIRED' : `expires in ${days} days`} (${m.notAfter.toISOString()}); etcd refuses an expired client certificate`,
            fix: 'install a renewed certificate and key at the same paths',
          });
        }
      }
    }
    if (etcd.user !== undefined && etcd.passwordFile !== undefined) {
      material.auth = { username: etcd.user, password: await readSecretFile(etcd.passwordFile, `${field}.passwordFile`) };
    }
  } catch (err) {
    const detail = isPgvipError(err) ? `${err.code}: ${err.detail}` : String(err);
    checks.push({ status: 'fail', title: 'etcd client files', detail, fix: 'the daemons refuse to start with these files; fix the file named above' });
    return null;
  }
  return material;
}

/** etcd's ids are 64-bit: hex, as etcdctl --hex and etcd's logs print them. */
const hexId = (id: string) => BigInt(id).toString(16);

export async function etcdChecks(cluster: ClusterConfig, self: string, timeoutMs: number): Promise<Check[]> {
  const etcd = cluster.quorum.etcd;
  if (etcd === undefined) return [];
  const field = 'cluster.quorum.etcd';
  const checks: Check[] = [];
  if (cluster.quorum.backend === 'etcd') {
    checks.push({
      status: 'note',
      title: 'quorum backend',
      detail: 'etcd: the agents keep the leader key and the term there, and the checks below must pass (docs/etcd.md)',
    });
  } else {
    checks.push({ status: 'note', title: 'quorum backend', detail: 'the witness; checking quorum.etcd for a later move (docs/etcd.md)' });
  }
  const material = await clientMaterial(etcd, field, checks);
  if (material === null) return checks;
  const { Etcd3 } = await import('etcd3');
  const clientFor = (hosts: readonly string[]): Etcd3 =>
    new Etcd3({
      hosts: [...hosts],
      dialTimeout: timeoutMs,
      ...material,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeoutMs }),
    });

  // ---- each endpoint on its own: reachable, TLS, round-trip time, what it says of the cluster ----
  interface Seen {
    readonly endpoint: string;
    readonly memberId: string;
    readonly leaderId: string;
    readonly clusterId: string;
  }
  const perEndpoint = await Promise.all(
    etcd.endpoints.map(async (endpoint): Promise<{ check: Check; seen?: Seen }> => {
      const client = clientFor([endpoint]);
      try {
        const first = await bounded(timeoutMs * 2, () => client.maintenance.status());
        if (!first.ok) return { check: failure(`etcd ${endpoint}`, first, etcd, field) };
        const rtts: number[] = [];
        for (let i = 0; i < rttSamples; i++) {
          const t0 = performance.now();
          const r = await bounded(timeoutMs, () => client.maintenance.status());
          if (r.ok) rtts.push(performance.now() - t0);
        }
        rtts.sort((a, b) => a - b);
        const rtt = rtts[Math.floor(rtts.length / 2)] ?? Number.NaN;
        const s = first.value;
        const seen = {
          endpoint,
          memberId: hexId(s.header.member_id),
          leaderId: hexId(s.leader),
          clusterId: hexId(s.header.cluster_id),
        };
        const tls = endpoint.startsWith('https://') ? ', TLS verified' : '';
        const about = `etcd ${s.version}, member ${seen.memberId}, raft term ${s.raftTerm}${tls}; round trip ${rtt.toFixed(1)} ms (median of ${rtts.length})`;
        if (rtt <= etcdRttWarnMs) return { check: { status: 'ok', title: `etcd ${endpoint}`, detail: about }, seen };
        return {
          check: {
            status: 'fail',
            title: `etcd ${endpoint}`,
            detail: `${about}: above ${etcdRttWarnMs} ms`,
            fix: 'each round trip is taken from the lease\'s renewal margin: run the members close to the database nodes (one per AZ of one region), on disks with low fsync latency (docs/etcd.md, "Sizing")',
          },
          seen,
        };
      } finally {
        client.close();
      }
    }),
  );
  checks.push(...perEndpoint.map((r) => r.check));
  const seen = perEndpoint.flatMap((r) => (r.seen === undefined ? [] : [r.seen]));
  if (seen.length === 0) {
    checks.push({ status: 'fail', title: 'etcd cluster', detail: 'no endpoint answered', fix: 'start the etcd members, or correct quorum.etcd.endpoints' });
    return checks;
  }

  // ---- the cluster: one cluster id, members, a leader everybody follows -----------------------------
  // Through the members that answered: one that swallows packets would hold every call for its deadline.
  const client = clientFor(seen.map((s) => s.endpoint));
  try {
    const members = await bounded(timeoutMs * 2, () => client.cluster.memberList({}));
    const clusterIds = new Set(seen.map((s) => s.clusterId));
    if (clusterIds.size > 1) {
      checks.push({
        status: 'fail',
        title: 'etcd cluster',
        detail: `the endpoints belong to ${clusterIds.size} different etcd clusters (${seen.map((s) => `${s.endpoint}: ${s.clusterId}`).join(', ')})`,
        fix: 'list the members of one etcd cluster in quorum.etcd.endpoints',
      });
    }
    if (members.ok) {
      const list = [...members.value.members].sort((a, b) => a.name.localeCompare(b.name));
      const nameOf = (id: string) => list.find((m) => hexId(m.ID) === id)?.name || id;
      const leaders = new Set(seen.map((s) => s.leaderId));
      const leaderId = [...leaders][0]!;
      if (leaders.size !== 1 || leaderId === '0') {
        checks.push({
          status: 'fail',
          title: 'etcd leader',
          detail: `the members do not follow one leader: ${seen.map((s) => `${s.endpoint} → ${s.leaderId === '0' ? 'none' : nameOf(s.leaderId)}`).join(', ')}`,
          fix: 'etcd has no quorum or is electing: check that a majority of members run and reach each other (etcdctl endpoint status --cluster)',
        });
      } else {
        checks.push({ status: 'ok', title: 'etcd leader', detail: `${nameOf(leaderId)} (member ${leaderId}), followed by every endpoint that answered` });
      }
      const clientUrls = list.flatMap((m) => m.clientURLs);
      const unlisted = list.filter((m) => !m.clientURLs.some((u) => etcd.endpoints.includes(u.replace(/\/$/, ''))));
      const n = list.length;
      const sizeNote = n % 2 === 0 ? `; an even count tolerates no more failures than ${n - 1} members (use 3 or 5)` : n === 1 ? '; one member is no quorum: it is a single point of failure' : '';
      const memberLine = `${n} member${n === 1 ? '' : 's'}: ${list.map((m) => `${m.name || '(unstarted)'} ${m.clientURLs.join(' ')}`).join(', ')}${sizeNote}`;
      checks.push({ status: n % 2 === 0 || n === 1 ? 'fail' : 'ok', title: 'etcd members', detail: memberLine, ...(n % 2 === 0 || n === 1 ? { fix: 'run 3 or 5 members (docs/etcd.md, "Sizing")' } : {}) });
      if (unlisted.length > 0) {
        checks.push({
          status: 'note',
          title: 'etcd endpoints',
          detail: `quorum.etcd.endpoints does not name ${unlisted.map((m) => `${m.name} (${m.clientURLs.join(' ')})`).join(', ')}: pgvip cannot turn to ${unlisted.length === 1 ? 'it' : 'them'} when the others are down`,
          fix: `list every member's client URL (they advertise ${clientUrls.join(', ')})`,
        });
      }
    } else {
      checks.push(failure('etcd member list', members, etcd, field));
    }

    // ---- permissions: write, read back and delete a probe key under the cluster's prefix -----------
    const key = `${etcd.prefix}/${cluster.name}/doctor-probe/${self}`;
    const value = randomBytes(8).toString('hex');
    const probe = await bounded(timeoutMs * 3, async () => {
      await client.put(key).value(value);
      const back = await client.get(key).string();
      if (back !== value) throw new Error(`read back ${JSON.stringify(back)} instead of the value written`);
      await client.delete().key(key);
    });
    if (probe.ok) {
      const who = etcd.user === undefined ? (etcd.tls?.certFile === undefined ? 'without authentication' : 'as the client certificate\'s user') : `as user ${etcd.user}`;
      checks.push({ status: 'ok', title: 'etcd permissions', detail: `${who}: wrote, read and deleted ${key}` });
    } else {
      checks.push(failure('etcd permissions', probe, etcd, field, key));
    }
  } finally {
    client.close();
  }
  return checks;
}

/** A failed etcd call as a check: what it means and what to do, by the kind of failure. */
function failure(title: string, o: Failure, etcd: EtcdConfig, field: string, key?: string): Check {
  switch (o.kind) {
    case 'tls':
      if (/alert (bad certificate|certificate required|unknown ca|certificate unknown)/i.test(o.why)) {
        return {
          status: 'fail',
          title,
          detail: `TLS handshake failed: ${o.why}`,
          fix: `the member refused this host's client certificate (or its absence): it runs with --client-cert-auth, so set ${field}.tls.certFile and keyFile to a certificate issued by the CA in the member's --trusted-ca-file`,
        };
      }
      return {
        status: 'fail',
        title,
        detail: `TLS handshake failed: ${o.why}`,
        fix: etcd.tls?.caFile === undefined
          ? `set ${field}.tls.caFile to the CA that issued the members' server certificates (their subjectAltName must name the address in the endpoint)`
          : `check that ${etcd.tls.caFile} issued the member's certificate and that its subjectAltName names the endpoint's address; a member with --client-cert-auth also needs ${field}.tls.certFile and keyFile`,
      };
    case 'auth':
      return {
        status: 'fail',
        title,
        detail: `authentication refused: ${o.why}`,
        fix: etcd.user === undefined
          ? `etcd has authentication on: set ${field}.user and passwordFile, or a client certificate whose common name is an etcd user`
          : `check the password in ${etcd.passwordFile} for user ${etcd.user} (etcdctl user passwd ${etcd.user})`,
      };
    case 'permission':
      return {
        status: 'fail',
        title,
        detail: `permission denied${key === undefined ? '' : ` on ${key}`}: ${o.why}`,
        fix: `grant the user's role readwrite on the prefix: etcdctl role grant-permission <role> readwrite --prefix=true ${etcd.prefix}/`,
      };
    case 'timeout':
      return { status: 'fail', title, detail: `no answer in time: ${o.why}`, fix: 'check that the member runs and that security groups and firewalls let this host reach its client port' };
    case 'unreachable':
      return { status: 'fail', title, detail: `unreachable: ${o.why}`, fix: 'check that the member runs and listens on that address (listen-client-urls), and that this host may reach the port' };
    default:
      return { status: 'fail', title, detail: o.why, fix: 'see etcd\'s log on the member' };
  }
}
