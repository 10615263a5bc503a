// The cluster's `quorum` block: who keeps the cluster's one source of truth on terms and leases.
// "witness" (the default) is pgvip's own third voter; "etcd" is an existing etcd cluster (v3 API),
// for users who outgrow one witness (docs/etcd.md). It is in the cluster block, so all three files
// name the same endpoints and prefix; the files it names (TLS client key, password) are host files
// at the same path on every host, each owned by that host's daemon user.
//
// With `backend: etcd` the agents keep the leader key and the term in etcd, and witness daemons only
// observe (docs/design.md, Quorum on etcd). With `backend: witness` the daemons ignore an etcd block:
// `pgvip doctor` checks it, so it can be prepared and checked while the cluster still runs on the
// witness.
import { z } from 'zod';
import { etcdDefaultElectionTimeoutMs, type QuorumTimings } from '../core/timings.js';
import { absolutePath, closedObject, durationMs, host, listOf, oneOf } from './fields.js';
import { isLoopbackHost } from './loopback.js';
import { addComposedIssue, problem } from './problem.js';
import { whenValidAt } from './when-valid.js';

export const quorumBackends = ['witness', 'etcd'] as const;
export type QuorumBackend = (typeof quorumBackends)[number];

/** etcd's own advice is 3 or 5 members, at most 7; a longer list is a mistake, not a bigger cluster. */
export const etcdEndpointsMax = 7;
export const etcdDefaultClientPort = 2379;
export const etcdDefaultPrefix = '/pgvip';

const endpointSentence = `must be an etcd client URL, http:// or https:// with a host and an optional port and nothing after it, e.g. https://10.0.1.11:${etcdDefaultClientPort}`;

/** `url` normalised to scheme://host:port (etcd's client port when none is given), or why it is not an endpoint. */
export function parseEtcdEndpoint(url: string): { endpoint: string } | { problem: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { problem: endpointSentence };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { problem: `${endpointSentence} (not ${u.protocol}//)` };
  if (u.username !== '' || u.password !== '') return { problem: 'must not carry a user or password: set quorum.etcd.user and passwordFile instead' };
  if (u.pathname !== '/' || u.search !== '' || u.hash !== '') return { problem: `${endpointSentence} (no path, query or fragment: the key prefix is quorum.etcd.prefix)` };
  if (!host().safeParse(u.hostname).success) return { problem: `must name an IPv4 address or a host name, e.g. https://10.0.1.11:${etcdDefaultClientPort}` };
  const port = u.port === '' ? etcdDefaultClientPort : Number(u.port);
  return { endpoint: `${u.protocol}//${u.hostname}:${port}` };
}

const endpoint = () =>
  z
    .string({ error: endpointSentence })
    .transform((url, ctx) => {
      const parsed = parseEtcdEndpoint(url);
      if ('problem' in parsed) {
        ctx.addIssue({ code: 'custom', message: parsed.problem });
        return z.NEVER;
      }
      return parsed.endpoint;
    })
    .meta({ typeLabel: 'http(s) URL' });

// A path of one or more segments, each of letters, digits, '.', '_' or '-' (not "." or ".."), no
// trailing slash: pgvip appends /<cluster>/leader and the like, and etcd's permissions are granted on
// key prefixes, so the prefix must be a plain path a role's range can name exactly.
const prefixPattern = /^(\/(?!\.\.?(\/|$))[A-Za-z0-9._-]+)+$/;
const prefixSentence = 'must be a key path of one or more /segments of letters, digits, ".", "_" or "-" (no trailing /, no . or .. segments, at most 128 characters), e.g. /pgvip';

const userPattern = /^[A-Za-z0-9._@-]{1,64}$/;

const EtcdTlsSchema = closedObject({
  caFile: absolutePath('/etc/pgvip/etcd/ca.crt')
    .optional()
    .meta({ defaultLabel: 'the system\'s CA store' })
    .describe('PEM certificate(s) of the CA that issued the etcd members\' server certificates; the members are verified against these alone. Without it, the system\'s trusted CAs.'),
  certFile: absolutePath('/etc/pgvip/etcd/client.crt')
    .optional()
    .describe('PEM client certificate this host presents to etcd (members run with --client-cert-auth). The same path on every host, each with its own certificate. Requires keyFile.'),
  keyFile: absolutePath('/etc/pgvip/etcd/client.key')
    .optional()
    .describe('Unencrypted PEM private key of certFile, mode 0600, owned by the daemon\'s user on each host. Requires certFile.'),
})
  .superRefine((tls, ctx) => {
    if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
      const missing = tls.certFile === undefined ? 'certFile' : 'keyFile';
      const present = missing === 'certFile' ? 'keyFile' : 'certFile';
      addComposedIssue(ctx, [missing], problem(`is required with quorum.etcd.tls.${present}`, undefined, `set both (a client certificate and its key), or neither`));
    }
  })
  .optional()
  .meta({ defaultLabel: 'none' })
  .describe('TLS towards etcd, for https:// endpoints: the CA that verifies the members and an optional client certificate. Verification cannot be switched off.');

const EtcdSchema = closedObject({
  endpoints: listOf(endpoint(), `etcd client URLs, e.g. [https://10.0.1.11:${etcdDefaultClientPort}]`, 1)
    .max(etcdEndpointsMax, { error: `must list at most ${etcdEndpointsMax} endpoints (etcd clusters have 3 or 5 members, at most 7)` })
    .describe(`Client URLs of the etcd members (usually all of them, 3 or 5), each http:// or https://, port ${etcdDefaultClientPort} when none is given; all of one scheme.`),
  prefix: z
    .string({ error: prefixSentence })
    .max(128, { error: prefixSentence })
    .regex(prefixPattern, { error: prefixSentence })
    .default(etcdDefaultPrefix)
    .meta({ typeLabel: 'key path' })
    .describe('Key prefix of pgvip\'s keys; each cluster\'s keys are under <prefix>/<cluster name>/. Grant pgvip\'s etcd role readwrite on <prefix>/ only, with the trailing slash (etcdctl role grant-permission pgvip readwrite --prefix=true /pgvip/): without it the grant also covers /pgvip2.'),
  tls: EtcdTlsSchema,
  user: z
    .string({ error: 'must be an etcd user name of 1–64 letters, digits or . _ @ -, e.g. pgvip' })
    .regex(userPattern, { error: 'must be an etcd user name of 1–64 letters, digits or . _ @ -, e.g. pgvip' })
    .optional()
    .meta({ typeLabel: 'string', defaultLabel: 'none (etcd auth off, or a client certificate\'s CN)' })
    .describe('etcd user pgvip authenticates as (etcd auth enabled). Requires passwordFile.'),
  passwordFile: absolutePath('/etc/pgvip/etcd/password')
    .optional()
    .describe('File holding the etcd user\'s password (mode 0600, owned by the daemon\'s user on each host). Requires user.'),
  electionTimeoutMs: durationMs(100, 60_000)
    .default(etcdDefaultElectionTimeoutMs)
    .describe('The etcd members\' --election-timeout (etcd\'s default 1000); pgvip does not set it, it checks the timings against it. A leader change costs up to two of it without renewals: when that is longer than the lease validity minus a heartbeat, the agents warn at start (the primary then keeps its lease through the standby alone). etcd also raises a lease TTL to 1.5 of it, which slows a failover after host loss.'),
  keepLeaderOffPrimary: z
    .boolean({ error: 'must be true or false' })
    .optional()
    .meta({ defaultLabel: 'true with three or more nodes, false with two' })
    .describe('The primary\'s agent asks etcd (MoveLeader) to move its raft leadership to a member on another host while etcd\'s leader runs on the primary\'s host. A lost primary host then costs no etcd election: its leader key goes a TTL after its last renewal instead of about 2 s later (docs/design.md, Quorum on etcd). It changes no key; a leader change only lengthens leases. With etcd auth on, MoveLeader needs the root role: refused, the agent logs it once and stops asking.'),
})
  .superRefine((etcd, ctx) => {
    const seen = new Map<string, number>();
    etcd.endpoints.forEach((e, i) => {
      const earlier = seen.get(e);
      if (earlier !== undefined) addComposedIssue(ctx, ['endpoints', i], problem(`duplicates endpoints[${earlier}]`, e, 'list each etcd member once'));
      else seen.set(e, i);
    });
    const schemes = new Set(etcd.endpoints.map((e) => e.slice(0, e.indexOf(':'))));
    if (schemes.size > 1) {
      addComposedIssue(ctx, ['endpoints'], problem('mixes http:// and https://', etcd.endpoints, 'use one scheme for every member (https:// with tls, or http:// on a trusted network)'));
    }
  }, whenValidAt(['endpoints']))
  .superRefine((etcd, ctx) => {
    const plain = etcd.endpoints.filter((e) => e.startsWith('http://'));
    if (plain.length === 0) return;
    if (etcd.tls !== undefined) {
      addComposedIssue(ctx, ['tls'], problem('is set but the endpoints are http://, which never use it', plain, 'use https:// endpoints, or remove tls'));
    }
    const remote = plain.filter((e) => !isLoopbackHost(new URL(e).hostname));
    if (etcd.user !== undefined && remote.length > 0) {
      // etcd checks the password in the clear Authenticate call: over http:// anyone on the path reads it.
      addComposedIssue(ctx, ['user'], problem(`needs https:// endpoints: over http:// the password crosses the network in clear (to ${remote.join(', ')})`, etcd.user, 'use https:// endpoints with quorum.etcd.tls, or authenticate with a client certificate instead'));
    }
  }, whenValidAt(['endpoints'], ['tls'], ['user']))
  .superRefine((etcd, ctx) => {
    if (etcd.user !== undefined && etcd.passwordFile === undefined) {
      addComposedIssue(ctx, ['passwordFile'], problem('is required with quorum.etcd.user', undefined, 'set it to a 0600 file holding that user\'s password, e.g. /etc/pgvip/etcd/password'));
    }
    if (etcd.user === undefined && etcd.passwordFile !== undefined) {
      addComposedIssue(ctx, ['user'], problem('is required with quorum.etcd.passwordFile', undefined, 'set the etcd user name the password belongs to, e.g. pgvip'));
    }
  }, whenValidAt(['user'], ['passwordFile']))
  .optional()
  .describe('The etcd cluster (required when backend is "etcd"). May be set while backend is "witness", to check it with pgvip doctor before a move; the daemons then ignore it.');

export const QuorumSchema = closedObject({
  backend: oneOf(quorumBackends)
    .default('witness')
    .describe('"witness": pgvip\'s witness is the third voter (the default; docs/design.md). "etcd": an etcd cluster holds the leader key and the term, and witnesses only observe (docs/etcd.md). pgvip doctor checks the etcd block.'),
  etcd: EtcdSchema,
})
  .superRefine((quorum, ctx) => {
    if (quorum.backend === 'etcd' && quorum.etcd === undefined) {
      addComposedIssue(ctx, ['etcd'], problem('is required when quorum.backend is "etcd"', undefined, `set quorum.etcd.endpoints, e.g. [https://10.0.1.11:${etcdDefaultClientPort}, https://10.0.1.12:${etcdDefaultClientPort}, https://10.0.2.20:${etcdDefaultClientPort}], or use backend: witness`));
    }
  }, whenValidAt(['backend'], ['etcd']))
  .prefault({})
  .describe('Who holds the cluster\'s quorum: the witness (default) or an etcd cluster (docs/etcd.md).');

export type QuorumConfig = z.output<typeof QuorumSchema>;
export type EtcdConfig = NonNullable<QuorumConfig['etcd']>;

/** What the core's timing checks need of the quorum block (timingViolations, timingWarnings, takeoverAfterMs). */
export function quorumTimingsOf(q: QuorumConfig): QuorumTimings {
  return q.backend === 'etcd'
    ? { backend: 'etcd', electionTimeoutMs: q.etcd?.electionTimeoutMs ?? etcdDefaultElectionTimeoutMs }
    : { backend: 'witness' };
}
