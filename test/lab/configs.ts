// The pgvip config files of the lab's hosts, generated into the lab directory in the documented
// shapes (docs/configuration.md, deploy/examples): one agent file per database host and the witness
// file, all carrying the same cluster block. Secrets (cluster key, operator token) are written per
// host, mode 0600, owned by the user that daemon runs as, as an operator would install them.
// TLS: the operator API is reached from outside the witness host, so it always serves HTTPS (the
// witness refuses a non-loopback operator API without TLS); with `tls` the peer protocol too,
// mutual, with certificates issued by `pgvip init --tls`'s code (labCertificates()).
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { issueCertificates, type IssuedSet } from '../../packages/witness/src/cli/tls-certs.js';
import { osUser } from './exec.js';
import { pgBinDir, type PgServer } from './postgres.js';
import { clusterName, type DbNode, type Topology } from './topology.js';

/**
 * The OS users of the daemons: the agent runs as PostgreSQL's user (with CAP_NET_ADMIN), the witness as an
 * unprivileged user.
 */
export const agentUser = 'postgres';
export const witnessUser = 'nobody';

export interface LabConfigs {
  readonly agents: Readonly<Record<DbNode, string>>;
  readonly witness: string;
  readonly operatorToken: string;
  /** Where the witness's notification command appends every event (one JSON object per line). */
  readonly eventsFile: string;
  /**
   * How the lab's own clients reach the daemons: the CA, the lab's client certificate, and whether the peer
   * protocol is on TLS.
   */
  readonly tls: LabTls;
}

export interface LabTls {
  /** The agents' and the witness's peer ports serve HTTPS with mutual TLS. */
  readonly peer: boolean;
  readonly ca: string;
  /** A certificate of the lab's CA for the lab's own requests (mutual TLS asks for one). */
  readonly cert: string;
  readonly key: string;
  /** Where the PEM files are in the lab directory (for Prometheus' tls_config). */
  readonly files: { readonly ca: string; readonly cert: string; readonly key: string };
}

/** `quorum.backend: etcd` with the lab's members (plain http: the lab's network is closed; docs/lab.md). */
export interface LabQuorum {
  readonly endpoints: readonly string[];
  readonly prefix: string;
}

export interface LabNodeTraits {
  readonly priority?: number;
  readonly noFailover?: boolean;
}

/** What a lab sets in the cluster block beyond its defaults: node traits and replication settings. */
export interface LabClusterExtra {
  /** `priority` and `noFailover` of a node's entry in cluster.nodes (docs/configuration.md). */
  readonly nodeTraits?: Readonly<Partial<Record<DbNode, LabNodeTraits>>>;
  /** More keys of the replication block (synchronousCount, degrade), beside mode. */
  readonly replication?: Readonly<Record<string, unknown>>;
}

/** The lab's CA and certificates: one per host, naming its address, and one for the lab's own client. */
export function labCertificates(t: Topology): Promise<IssuedSet> {
  return issueCertificates(
    [
      ...t.dbNodes.map((n) => ({ name: n, addresses: [t.hosts[n].address] })),
      { name: 'witness', addresses: [t.hosts.witness.address, '127.0.0.1'] },
      { name: 'lab', addresses: [] },
    ],
    { cluster: clusterName, hostDays: 2 },
  );
}

/** `host`'s certificate and key from the set, installed in `dir` for `user` (key 0600), and the CA. */
function installTls(certs: IssuedSet, name: string, dir: string, user: string) {
  const h = certs.hosts.find((c) => c.name === name)!;
  const files = { certFile: path.join(dir, 'tls.crt'), keyFile: path.join(dir, 'tls.key'), caFile: path.join(dir, 'ca.crt') };
  writeFileSync(files.certFile, h.cert);
  writeFileSync(files.caFile, certs.caCert);
  writeSecret(files.keyFile, h.key, user);
  return files;
}

function writeSecret(file: string, content: string, user: string): void {
  writeFileSync(file, content, { mode: 0o600 });
  const u = osUser(user);
  chownSync(file, u.uid, u.gid);
}

function ownedDir(dir: string, user: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const u = osUser(user);
  chownSync(dir, u.uid, u.gid);
  return dir;
}

export function writeLabConfigs(
  t: Topology,
  labDir: string,
  pg: Readonly<Record<DbNode, PgServer>>,
  timings: Readonly<Record<string, number>> = {},
  replication: 'sync' | 'async' = 'sync',
  tls: { readonly certs: IssuedSet; readonly peer: boolean },
  agentExtra: (node: DbNode) => Readonly<Record<string, unknown>> = () => ({}),
  quorum?: LabQuorum,
  extra: LabClusterExtra = {},
): LabConfigs {
  const key = `${randomBytes(32).toString('hex')}\n`;
  const operatorToken = randomBytes(24).toString('hex');
  const hostDir = (h: string) => path.join(labDir, 'hosts', h);
  const witnessDir = hostDir('witness');
  const eventsFile = path.join(witnessDir, 'events.jsonl');
  writeFileSync(eventsFile, '');
  chownSync(eventsFile, osUser(witnessUser).uid, osUser(witnessUser).gid);

  const cluster = (keyFile: string, withNotifications: boolean) => ({
    name: clusterName,
    nodes: t.dbNodes.map((n) => ({
      id: n,
      ...(extra.nodeTraits?.[n] ?? {}),
      agent: { host: t.hosts[n].address, port: t.ports.agent },
      postgres: { host: t.hosts[n].address, port: t.ports.postgres, user: 'postgres', database: 'postgres', dataDir: pg[n].dataDir, binDir: pgBinDir, osUser: 'postgres' },
    })),
    witness: { id: 'witness', host: t.hosts.witness.address, port: t.ports.witness },
    vip:
      t.vipMode === 'secondary-ip'
        ? { mode: 'secondary-ip', address: t.vip.address, interface: 'eth0', discovery: 'imds' }
        : { mode: 'route-table', address: t.vip.address, interface: 'eth0', routeTableIds: [t.routeTableId], discovery: 'imds' },
    replication: { mode: replication, ...(extra.replication ?? {}) },
    ...(Object.keys(timings).length > 0 ? { timings } : {}),
    auth: { keyFile },
    // The etcd backend (docs/etcd.md): the same block in all three files; the witness then only observes.
    ...(quorum === undefined ? {} : { quorum: { backend: 'etcd', etcd: { endpoints: [...quorum.endpoints], prefix: quorum.prefix } } }),
    // The operator's pager: every event is appended to a file the lab reads (rows 5 and 9 assert on it).
    ...(withNotifications ? { notifications: { command: { path: '/bin/sh', args: ['-c', `cat >> ${eventsFile} && echo >> ${eventsFile}`], events: ['*'] } } } : {}),
  });

  const agents = {} as Record<DbNode, string>;
  for (const n of t.dbNodes) {
    const dir = hostDir(n);
    const keyFile = path.join(dir, 'cluster.key');
    writeSecret(keyFile, key, agentUser);
    const file = path.join(dir, 'agent.yaml');
    const agentTls = tls.peer ? { tls: { ...installTls(tls.certs, n, dir, agentUser), mutual: true } } : {};
    writeFileSync(
      file,
      `# pgvip lab: the agent on ${n} (generated by test/lab/configs.ts)\n` +
        stringify({
          self: n,
          listen: { host: '0.0.0.0' },
          stateDir: ownedDir(path.join(dir, 'state'), agentUser),
          logLevel: 'info',
          ...agentTls,
          // A suite's own blocks of the agent file (hooks, rejoin), as an operator adds them.
          ...agentExtra(n),
          cluster: cluster(keyFile, false),
        }),
    );
    agents[n] = file;
  }

  const witnessKey = path.join(witnessDir, 'cluster.key');
  writeSecret(witnessKey, key, witnessUser);
  const tokenFile = path.join(witnessDir, 'operator.token');
  writeSecret(tokenFile, `${operatorToken}\n`, witnessUser);
  const witnessTls = installTls(tls.certs, 'witness', witnessDir, witnessUser);
  const witness = path.join(witnessDir, 'witness.yaml');
  writeFileSync(
    witness,
    '# pgvip lab: the witness (generated by test/lab/configs.ts)\n' +
      stringify({
        id: 'witness',
        listen: { host: '0.0.0.0', port: t.ports.witness },
        stateDir: ownedDir(path.join(witnessDir, 'state'), witnessUser),
        logLevel: 'info',
        ...(tls.peer ? { tls: { ...witnessTls, mutual: true } } : {}),
        // Reachable from the VPC (the lab's controller asks through the router), so it needs a token,
        // and TLS, so the token does not cross the network in clear.
        operatorApi: {
          host: t.hosts.witness.address,
          port: t.ports.operator,
          tokenFile,
          tls: { certFile: witnessTls.certFile, keyFile: witnessTls.keyFile },
        },
        clusters: [cluster(witnessKey, true)],
      }),
  );
  const lab = tls.certs.hosts.find((h) => h.name === 'lab')!;
  const labFiles = { ca: path.join(labDir, 'ca.crt'), cert: path.join(labDir, 'lab.crt'), key: path.join(labDir, 'lab.key') };
  writeFileSync(labFiles.ca, tls.certs.caCert);
  writeFileSync(labFiles.cert, lab.cert);
  writeFileSync(labFiles.key, lab.key, { mode: 0o644 });
  const labTls: LabTls = { peer: tls.peer, ca: tls.certs.caCert, cert: lab.cert, key: lab.key, files: labFiles };
  return { agents, witness, operatorToken, eventsFile, tls: labTls };
}
