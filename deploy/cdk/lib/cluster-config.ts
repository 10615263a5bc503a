// What the CDK app needs to know about one pgvip cluster, read from a JSON file (`-c config=FILE`).
// Everything is explicit, including the VPC's id, CIDR and subnets: the app never looks anything up
// in an AWS account at synth time, so `cdk synth` runs offline and deterministically.
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const ipv4 = z.string().regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/, 'expected an IPv4 address like 10.0.1.100');
const cidr = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'expected a CIDR block like 10.0.0.0/16');
const subnet = z.strictObject({
  id: z.string().regex(/^subnet-[0-9a-f]{8,17}$/, 'expected a subnet id like subnet-0123abcd'),
  availabilityZone: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d[a-z]$/, 'expected an availability zone like eu-west-1a'),
  cidrBlock: cidr,
  /**
   * The route table this subnet is associated with (optional). In route-table mode a database
   * node's subnet that names it must have it among routeTableIds: a client in that AZ reaches the VIP
   * through it, and a table left out is the layout's classic mistake.
   */
  routeTableId: z.string().regex(/^rtb-[0-9a-f]{8,17}$/, 'expected a route table id like rtb-0123abcd').optional(),
});
const node = z.strictObject({
  /** The node's fixed primary private address (the agent configs name it). */
  address: ipv4,
  subnet,
});

const sgId = z.string().regex(/^sg-[0-9a-f]{8,17}$/, 'expected a security group id like sg-0123abcd');

/**
 * An etcd cluster for quorum.backend: etcd (docs/etcd.md): members this stack creates, or existing
 * endpoints whose security group this stack opens to the database nodes and the witness.
 */
const etcd = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('existing'),
    /** Client URLs, as quorum.etcd.endpoints names them. */
    endpoints: z.array(z.string().regex(/^https:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/, 'expected an https:// client URL like https://10.0.3.21:2379')).min(1).max(7),
    /** The members' security group: gets port 2379 from the database nodes and the witness (and nothing else). */
    securityGroupId: sgId.optional(),
  }),
  z.strictObject({
    kind: z.literal('create'),
    /** 3 or 5 members, spread over availability zones. */
    members: z.array(node).refine((m) => m.length === 3 || m.length === 5, 'run 3 or 5 etcd members (docs/etcd.md, "Sizing")'),
    instanceType: z.string().default('m6i.large'),
    /** etcd's data directory, on a gp3 volume of its own (its WAL fsync latency is etcd's health). */
    dataVolumeGiB: z.number().int().min(8).max(1024).default(20),
    /** The etcd release to install (AL2023 ships none): a linux-amd64 tarball and its SHA-256, checked before use. */
    release: z.strictObject({
      url: z.string().regex(/^https:\/\/\S+\.tar\.gz$/, 'expected an https:// URL of an etcd release tarball (etcd-v3.5.x-linux-amd64.tar.gz)'),
      sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected the tarball\'s SHA-256 as 64 lower-case hex digits'),
    }),
    /**
     * Secrets Manager secret (JSON: ca, cert, key in PEM) with the members' TLS: a server certificate
     * whose subjectAltName names every member's address, used for clients and peers.
     */
    tlsSecretArn: z.string().regex(/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/, 'expected a Secrets Manager secret ARN'),
  }),
]);

const common = {
  /** Cluster name: the `pgvip:cluster` tag value and the config's cluster.name. */
  clusterName: z.string().regex(/^[a-z0-9-]{1,63}$/, 'expected a cluster name of [a-z0-9-], at most 63 characters'),
  vpc: z.strictObject({ id: z.string().regex(/^vpc-[0-9a-f]{8,17}$/, 'expected a VPC id like vpc-0123abcd'), cidrBlock: cidr }),
  vip: ipv4,
  dbA: node,
  dbB: node,
  /**
   * A third database node (db-c): the production layout of three nodes in three AZs, one standby
   * more (docs/design.md, "More than one standby"). Needs the etcd quorum backend (`etcd`): the
   * witness elects between two nodes only.
   */
  dbC: node.optional(),
  witness: node,
  /** Who may connect to PostgreSQL (the VIP and the nodes) on 5432: CIDR blocks and/or security groups. */
  clients: z
    .strictObject({
      cidrBlocks: z.array(cidr).default([]),
      securityGroupIds: z.array(z.string().regex(/^sg-[0-9a-f]{8,17}$/, 'expected a security group id like sg-0123abcd')).default([]),
    })
    .refine((c) => c.cidrBlocks.length + c.securityGroupIds.length > 0, 'name at least one client CIDR block or security group')
    .refine((c) => !c.cidrBlocks.some((b) => b.endsWith('/0')), 'PostgreSQL must not be open to the whole internet (a /0 client block)'),
  dbInstanceType: z.string().default('m6i.large'),
  witnessInstanceType: z.string().default('t3.small'),
  dbVolumeGiB: z.number().int().min(8).max(16384).default(100),
  /** A release tarball built by `npm run release`; when given, instances download and install it at boot. */
  releaseTarball: z.string().optional(),
  /** Grant the instances AWS Systems Manager access (Session Manager instead of SSH keys). */
  ssm: z.boolean().default(true),
  /**
   * Let the witness role stop this cluster's database instances (ec2:StopInstances,
   * deploy/iam/operator-stop-instance.json), for `pgvip failover --stop-old-primary` run there.
   */
  allowForcedStop: z.boolean().default(false),
  /** An etcd cluster for the etcd quorum backend (docs/etcd.md); absent: the witness is the quorum. */
  etcd: etcd.optional(),
};

export const clusterConfigSchema = z
  .discriminatedUnion('mode', [
    z.strictObject({ mode: z.literal('secondary-ip'), ...common }),
    z.strictObject({
      mode: z.literal('route-table'),
      ...common,
      /** Every route table whose subnets' clients reach the VIP; each gets the VIP's /32 route. */
      routeTableIds: z.array(z.string().regex(/^rtb-[0-9a-f]{8,17}$/, 'expected a route table id like rtb-0123abcd')).min(1),
    }),
  ])
  .superRefine((c, ctx) => {
    const issue = (path: string[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    const dbNames = dbNodeNames(c);
    for (const name of [...dbNames, 'witness'] as const) {
      const n = c[name]!;
      if (!inCidr(n.address, n.subnet.cidrBlock)) issue([name, 'address'], `${n.address} is not inside its subnet ${n.subnet.cidrBlock}`);
      if (!inCidr(n.address, c.vpc.cidrBlock)) issue([name, 'address'], `${n.address} is not inside the VPC ${c.vpc.cidrBlock}`);
    }
    if (c.dbC === undefined) {
      const azs = new Set([c.dbA.subnet.availabilityZone, c.dbB.subnet.availabilityZone]);
      if (azs.has(c.witness.subnet.availabilityZone)) {
        issue(['witness', 'subnet', 'availabilityZone'], 'put the witness in an availability zone of its own, so that losing one AZ never takes two voters');
      }
    } else if (c.etcd === undefined) {
      // With etcd the witness only observes, so it may share an AZ with a database node.
      issue(['dbC'], 'three database nodes need the etcd quorum backend: add an etcd block (docs/etcd.md); the witness elects between two nodes only');
    }
    if (c.mode === 'secondary-ip') {
      // A secondary IP can only move between ENIs of one subnet.
      for (const name of dbNames.slice(1)) {
        if (c[name]!.subnet.id !== c.dbA.subnet.id) issue([name, 'subnet', 'id'], `secondary-ip mode needs ${dbNames.length === 2 ? 'both' : 'all'} DB nodes in one subnet; use route-table mode across AZs`);
      }
      if (!inCidr(c.vip, c.dbA.subnet.cidrBlock)) issue(['vip'], `the VIP ${c.vip} must be a free address of the DB subnet ${c.dbA.subnet.cidrBlock}`);
    } else {
      if (c.dbA.subnet.availabilityZone === c.dbB.subnet.availabilityZone) issue(['dbB', 'subnet', 'availabilityZone'], 'route-table mode is for DB nodes in different AZs');
      const azC = c.dbC?.subnet.availabilityZone;
      if (azC !== undefined && [c.dbA, c.dbB].some((n) => n.subnet.availabilityZone === azC)) {
        issue(['dbC', 'subnet', 'availabilityZone'], `route-table mode with three DB nodes puts one in each of three AZs, so that losing an AZ loses one node; ${azC} already holds another DB node`);
      }
      // Inside the VPC CIDR the VPC's local route would win over the /32 route.
      if (inCidr(c.vip, c.vpc.cidrBlock)) issue(['vip'], `the VIP ${c.vip} must lie outside the VPC CIDR ${c.vpc.cidrBlock} in route-table mode`);
      for (const name of dbNames) {
        const table = c[name]!.subnet.routeTableId;
        if (table !== undefined && !c.routeTableIds.includes(table)) {
          issue(['routeTableIds'], `${name}'s subnet routes through ${table}, which is not listed: clients in ${c[name]!.subnet.availabilityZone} would not reach the VIP; add it`);
        }
      }
    }
    for (const a of [...dbNames, 'witness'] as const) if (c[a]!.address === c.vip) issue(['vip'], `the VIP must not be ${a}'s own address`);
    if (c.etcd?.kind === 'create') {
      const taken = new Set([...dbNames.map((name) => c[name]!.address), c.witness.address, c.vip]);
      const perAz = new Map<string, number>();
      c.etcd.members.forEach((m, i) => {
        if (!inCidr(m.address, m.subnet.cidrBlock)) issue(['etcd', 'members', String(i), 'address'], `${m.address} is not inside its subnet ${m.subnet.cidrBlock}`);
        if (taken.has(m.address)) issue(['etcd', 'members', String(i), 'address'], `${m.address} is already another instance's address or the VIP`);
        taken.add(m.address);
        perAz.set(m.subnet.availabilityZone, (perAz.get(m.subnet.availabilityZone) ?? 0) + 1);
      });
      // Losing one AZ must leave a majority: at most a minority of the members in any one AZ.
      const most = Math.floor((c.etcd.members.length - 1) / 2);
      for (const [az, n] of perAz) if (n > most) issue(['etcd', 'members'], `${n} of ${c.etcd.members.length} etcd members are in ${az}: losing that AZ would lose etcd's quorum; put at most ${most} in any one AZ`);
    }
  });

/** The database nodes a description has, in order: dbA, dbB and, in the three-node layout, dbC. */
export function dbNodeNames(c: { readonly dbC?: unknown }): Array<'dbA' | 'dbB' | 'dbC'> {
  return c.dbC === undefined ? ['dbA', 'dbB'] : ['dbA', 'dbB', 'dbC'];
}

export type ClusterConfig = z.output<typeof clusterConfigSchema>;
export type ClusterConfigInput = z.input<typeof clusterConfigSchema>;

function toNumber(ip: string): number {
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

export function inCidr(ip: string, block: string): boolean {
  const [base, bits] = block.split('/') as [string, string];
  const size = 2 ** (32 - Number(bits));
  const start = Math.floor(toNumber(base) / size) * size;
  return toNumber(ip) >= start && toNumber(ip) < start + size;
}

/** Validates a cluster description; throws one error listing every problem with its field. */
export function parseClusterConfig(raw: unknown, source = 'cluster config'): ClusterConfig {
  const parsed = clusterConfigSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`${source} is invalid:\n${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

export function loadClusterConfig(file: string): ClusterConfig {
  return parseClusterConfig(JSON.parse(readFileSync(file, 'utf8')), file);
}
