// The configuration files, as zod schemas. One cluster block (ClusterConfigSchema) describes a
// primary/standby pair, its witness and its VIP; the agent file on each database node and the
// witness file both embed it unchanged, so the same block can be pasted into all three files.
// Every field has a `.describe()` text: docs/configuration.md is generated from them.
import { z } from 'zod';
import {
  absolutePath,
  awsRegion,
  closedObject,
  discriminatorError,
  dnsLabel,
  durationMs,
  ec2Id,
  slotName,
  flag,
  host,
  integer,
  ipv4Address,
  listOf,
  nonEmptyText,
  oneOf,
  port,
  shellSafePath,
} from './fields.js';
import { HooksSchema } from './hooks-schema.js';
import { isLoopbackHost } from './loopback.js';
import { NotificationsSchema } from './notifications-schema.js';
import { QuorumSchema } from './quorum-schema.js';
import { ETCD_QUORUM_ID } from '../core/quorum.js';
import { etcdTimingViolations } from '../core/timings.js';
import { RejoinSchema } from './rejoin-schema.js';
import { postgresParametersSchema } from './postgres-parameters-schema.js';
import { addComposedIssue, problem } from './problem.js';
import { closestMatch } from './suggest.js';
import { TimingsSchema, timingIssueKind } from './timings-schema.js';
import { OperatorTlsSchema, PeerTlsSchema } from './tls-schema.js';
import { whenValidAt } from './when-valid.js';

const interfaceName = () =>
  z
    .string({ error: 'must be a network interface name as `ip link` shows it, e.g. eth0 or ens5' })
    .regex(/^[A-Za-z0-9._-]{1,15}$/, { error: 'must be a network interface name as `ip link` shows it, e.g. eth0 or ens5' })
    .meta({ typeLabel: 'interface name' });

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
const defaultAgentPort = 8008;

/**
 * The most database nodes of one cluster: three AZs with three nodes each. Every standby grants the
 * primary's lease, and every node's final position is a compare of the campaign txn (docs/design.md,
 * "More than one standby"), so the work per heartbeat grows with N; beyond nine, read replicas that
 * never fail over are better served outside pgvip.
 */
export const clusterNodesMax = 9;
const nodesSentence = `must be a list of 2 to ${clusterNodesMax} database nodes (exactly two with the witness backend)`;
const nodePriorityMax = 100;

const logLevel = () => oneOf(logLevels).default('info').describe('Least severe log level written (JSON lines on stdout).');

// ---- nodes ---------------------------------------------------------------------------------

const NodeSchema = closedObject({
  id: dnsLabel('db-a').describe('Name of this database node, unique in the cluster; also its replication application_name by default.'),
  agent: closedObject({
    host: host('10.0.1.11').describe('Address at which the other node and the witness reach this node\'s agent.'),
    port: port().default(defaultAgentPort).describe('TCP port of this node\'s agent.'),
  }).describe('How peers reach the agent on this node.'),
  postgres: closedObject({
    host: host('10.0.1.11').describe('Address of this node\'s PostgreSQL, as the other node uses it to stream from it (primary_conninfo) and the local agent to monitor it.'),
    port: port().default(5432).describe('PostgreSQL port.'),
    user: nonEmptyText('pgvip').default('pgvip').describe('Role the agents connect as, for health checks, write probes, promotion and replication; needs LOGIN and REPLICATION and the right to run pg_promote().'),
    database: nonEmptyText('postgres').default('postgres').describe('Database the agent connects to for checks and write probes.'),
    passwordFile: absolutePath('/etc/pgvip/pg-password').optional().meta({ defaultLabel: 'none (peer/cert auth or .pgpass)' }).describe('File holding the role\'s password (mode 0600). Read by the agent, never by the config loader.'),
    dataDir: shellSafePath('/var/lib/postgresql/15/main').describe('PostgreSQL data directory (PGDATA) on this node; used for pg_rewind and base backups on rejoin.'),
    binDir: shellSafePath('/usr/lib/postgresql/15/bin').default('/usr/lib/postgresql/15/bin').describe('Directory of pg_ctl, pg_rewind and pg_basebackup.'),
    osUser: nonEmptyText('postgres').default('postgres').describe('Operating-system user that owns dataDir and runs PostgreSQL; the agent runs PostgreSQL tools as this user.'),
    applicationName: dnsLabel('db-a').optional().meta({ defaultLabel: 'the node id' }).describe('application_name this node uses when it streams as a standby; the primary names it in synchronous_standby_names. Must differ from every other node\'s (its applicationName, or its id).'),
  }).describe('This node\'s PostgreSQL.'),
  priority: integer(0, nodePriorityMax)
    .default(0)
    .describe('With more than two nodes (quorum.backend etcd): among standbys that flushed the same WAL on the same timeline, the one with the higher priority wins a failover, or a switchover without a named target; it never makes a less advanced standby win. With two nodes there is one candidate, and it has no effect (docs/design.md, "More than one standby").'),
  noFailover: flag()
    .default(false)
    .describe('true: this node is never promoted, by a failover or a switchover (a reporting replica, say). It streams asynchronously (never named in synchronous_standby_names: an acknowledgement from a node that can never be promoted could block every failover) and grants no leases. At least two nodes must be without it, so it takes three or more nodes.'),
  vip: closedObject({
    eniId: ec2Id('eni', 'eni-0123456789abcdef0').optional().meta({ defaultLabel: 'from IMDS' }).describe('Network interface that receives the VIP (secondary-ip mode) or that /32 routes point at (route-table mode). Required when vip.discovery is "config".'),
    instanceId: ec2Id('i', 'i-0123456789abcdef0').optional().meta({ defaultLabel: 'from IMDS' }).describe('EC2 instance of this node; used to verify the VIP and in log lines.'),
  }).optional().describe('This node\'s EC2 identity, when it is configured rather than discovered through IMDS.'),
}).transform((node) => ({
  ...node,
  postgres: { ...node.postgres, applicationName: node.postgres.applicationName ?? node.id },
}));

// ---- the VIP ------------------------------------------------------------------------------------

const vipModes = ['secondary-ip', 'route-table'] as const;

const vipAddress = () => ipv4Address('10.0.1.100').describe('The virtual IP address clients connect to.');
const vipInterface = () => interfaceName().default('eth0').describe('OS network device on which the agent adds the VIP (ip addr add).');
const vipRegion = () => awsRegion().optional().meta({ defaultLabel: 'from IMDS' }).describe('AWS region of the EC2 API endpoint. Required when discovery is "config".');
const vipDiscovery = () =>
  oneOf(['imds', 'config'])
    .default('imds')
    .describe('"imds": learn instance, ENI, region and subnet from the instance metadata service (IMDSv2), with any configured value taking precedence; "config": use only configured values (every node\'s vip.eniId and the region are then required).');

const SecondaryIpVipSchema = closedObject({
  mode: z.literal('secondary-ip').describe('Move the VIP as an EC2 secondary private IP between the nodes\' ENIs (both nodes in one subnet, so one AZ).'),
  address: vipAddress(),
  interface: vipInterface(),
  prefixLength: integer(16, 28).optional().meta({ defaultLabel: 'from IMDS (subnet CIDR)' }).describe('Prefix length used with ip addr add, i.e. the subnet\'s (AWS subnets are /16 to /28). Required when discovery is "config".'),
  region: vipRegion(),
  discovery: vipDiscovery(),
});

const RouteTableVipSchema = closedObject({
  mode: z.literal('route-table').describe('Point the VIP\'s /32 route in each listed route table at the primary\'s ENI (nodes in different AZs). The VIP should lie outside the VPC CIDR, and both ENIs need source/destination check disabled.'),
  address: vipAddress(),
  interface: vipInterface(),
  routeTableIds: listOf(ec2Id('rtb', 'rtb-0123456789abcdef0'), 'route table ids, e.g. [rtb-0123456789abcdef0]', 1).describe('Every route table whose subnets\' clients must reach the VIP; each needs the VIP\'s /32 route created beforehand.'),
  region: vipRegion(),
  discovery: vipDiscovery(),
});

const VipSchema = z
  .discriminatedUnion('mode', [SecondaryIpVipSchema, RouteTableVipSchema], discriminatorError('mode', vipModes))
  .describe('How the VIP is moved to the primary.');

// ---- the cluster ------------------------------------------------------------------------------

const AuthSchema = closedObject({
  keyFile: absolutePath('/etc/pgvip/cluster.key').optional().describe('File holding the cluster\'s shared secret key (mode 0600) that authenticates every request between agents and witness. Required unless disabled is true. Read by the daemons, never by the config loader.'),
  disabled: z.boolean({ error: 'must be true or false' }).default(false).meta({ typeLabel: 'boolean' }).describe('Set to true to run without authentication (a lab only: anyone who can reach the ports could then steer the cluster).'),
})
  .superRefine((auth, ctx) => {
    if (auth.disabled && auth.keyFile !== undefined) {
      addComposedIssue(ctx, ['disabled'], problem('contradicts auth.keyFile', auth.disabled, 'remove disabled to authenticate with the key file, or remove keyFile to run without authentication'));
    } else if (!auth.disabled && auth.keyFile === undefined) {
      addComposedIssue(ctx, ['keyFile'], problem('is required unless auth.disabled is true', undefined, 'set it to a file holding the cluster\'s shared key, e.g. /etc/pgvip/cluster.key, or set auth.disabled: true (lab only)'));
    }
  })
  .describe('How agents and witness authenticate each other.');

type NodeOutput = z.output<typeof NodeSchema>;

/** The node ids must differ: each is a sender identity and an application_name. */
function checkDistinctNodeIds(nodes: readonly NodeOutput[], ctx: z.RefinementCtx): void {
  nodes.forEach((node, i) => {
    const earlier = nodes.findIndex((other) => other.id === node.id);
    if (earlier < i) {
      addComposedIssue(ctx, ['nodes', i, 'id'], problem(`duplicates nodes[${earlier}].id`, node.id, 'every node needs its own id, e.g. db-a, db-b and db-c'));
    }
  });
}

/**
 * The effective application names (postgres.applicationName, or the id) must differ too: the primary
 * names standbys by them in synchronous_standby_names, maps its walsenders and slots back to nodes by
 * them, and two nodes under one name would count as one (or one standby as two in ANY k).
 */
function checkDistinctApplicationNames(nodes: readonly NodeOutput[], ctx: z.RefinementCtx): void {
  nodes.forEach((node, i) => {
    const name = node.postgres.applicationName;
    const earlier = nodes.findIndex((other) => other.postgres.applicationName === name);
    if (earlier >= i) return;
    const other = nodes[earlier]!;
    const of = (n: NodeOutput, at: number) => n.postgres.applicationName === n.id ? `nodes[${at}].id (its application_name by default)` : `nodes[${at}].postgres.applicationName`;
    // Name the field someone set: this node's applicationName, or the earlier node's when it took this id.
    const mine = node.postgres.applicationName !== node.id;
    const at = mine ? i : earlier;
    const against = mine ? of(other, earlier) : of(node, i);
    addComposedIssue(ctx, ['nodes', at, 'postgres', 'applicationName'], problem(`duplicates ${against}: two nodes would stream under one application_name`, name, 'every node needs its own application_name: remove postgres.applicationName to use the node id, or set one no other node uses'));
  });
}

/**
 * What the number of nodes, noFailover and synchronousCount must agree on (docs/design.md, "More
 * than one standby"): the witness runs exactly two nodes; a failover needs two nodes that may be
 * primary; ANY k can only count standbys that may be synchronous, which noFailover nodes never are.
 */
interface NodeMix {
  readonly nodes: readonly NodeOutput[];
  readonly quorum: { readonly backend: string };
  readonly replication: { readonly mode: string; readonly synchronousCount?: number | undefined };
}

function checkNodeMix(cluster: NodeMix, ctx: z.RefinementCtx): void {
  const n = cluster.nodes.length;
  if (cluster.quorum.backend !== 'etcd' && n !== 2) {
    addComposedIssue(ctx, ['nodes'], problem(`must list exactly two database nodes with quorum.backend "${cluster.quorum.backend}" (a primary and its standby: the witness is the third voter, and it elects between two)`, n, `list two nodes, or set quorum.backend: etcd for 3 to ${clusterNodesMax} nodes (docs/etcd.md)`));
  }
  const mayLead = cluster.nodes.filter((node) => !node.noFailover).length;
  if (mayLead < 2) {
    const at = cluster.nodes.findIndex((node) => node.noFailover);
    addComposedIssue(ctx, ['nodes', at < 0 ? 0 : at, 'noFailover'], problem(`leaves ${mayLead} node(s) that may become primary, so no failover would ever be possible`, true, 'at least two nodes must be without noFailover: remove it from one, or add a node'));
  }
  const k = cluster.replication.synchronousCount;
  if (k === undefined) return;
  if (cluster.replication.mode !== 'sync') {
    addComposedIssue(ctx, ['replication', 'synchronousCount'], problem('only applies with replication.mode "sync"', k, 'remove it, or set replication.mode: sync'));
  } else if (mayLead >= 2 && k > mayLead - 1) {
    addComposedIssue(ctx, ['replication', 'synchronousCount'], problem(`asks every commit to wait for ${k} standbys, but at most ${mayLead - 1} can be synchronous (the ${mayLead} nodes without noFailover, less the primary)`, k, `set it to at most ${mayLead - 1}, or add a node`));
  }
}

const ClusterObjectSchema = closedObject({
  name: dnsLabel('main').describe('Name of the cluster; one witness tells its clusters apart by it, and every request carries it.'),
  nodes: z
    .array(NodeSchema, { error: nodesSentence })
    .min(2, { error: nodesSentence })
    .max(clusterNodesMax, { error: nodesSentence })
    .describe(`The database nodes, in any order (which one is primary is state, not config): exactly two with the witness backend; 2 to ${clusterNodesMax} with quorum.backend etcd (docs/design.md, "More than one standby"), of which this release runs two.`),
  witness: closedObject({
    id: dnsLabel('witness').default('witness').describe('Name of the witness; must differ from the node ids.'),
    host: host('10.0.2.20').describe('Address at which the agents reach the witness.'),
    port: port().default(8009).describe('TCP port of the witness.'),
  }).describe('The third voter, on a separate instance (ideally in a third AZ).'),
  vip: VipSchema,
  replication: closedObject({
    mode: oneOf(['sync', 'async']).default('sync').describe('"sync": the primary names the standby in synchronous_standby_names, so an automatic failover loses no acknowledged write. "async": faster commits, but a failover may lose up to lagBytesMax of acknowledged writes.'),
    lagBytesMax: integer(0).default(16 * 1024 * 1024).meta({ typeLabel: 'bytes (integer ≥ 0)' }).describe('A standby further behind than this many bytes of WAL is not eligible for promotion (the async-mode bound on data loss).'),
    synchronousCount: integer(1, clusterNodesMax - 1)
      .optional()
      .meta({ defaultLabel: '1' })
      .describe('Sync mode: how many standbys must have flushed a commit before it is acknowledged (synchronous_standby_names = \'ANY k (…)\' naming every standby without noFailover that streams). At most the number of nodes without noFailover, less one. Losing standbys until fewer than k stream makes commits wait; after timings.syncDegradeAfterMs, with replication.degrade "async", the primary lowers k with the quorum\'s agreement (etcd, or the witness with two nodes), down to async, and raises it again as they catch up; "block" keeps k. 2 or more needs replication.slots.enabled (PostgreSQL would count a reconnected standby beside its old walsender twice; docs/design.md, "More than one standby"). With two nodes it is 1; more takes three or more nodes.'),
    degrade: oneOf(['async', 'block'])
      .default('async')
      .describe('Sync mode, when fewer standbys stream than synchronousCount asks for, for timings.syncDegradeAfterMs: "async" lowers k with the quorum\'s agreement (on etcd the sync record first), down to async, and raises it again as they catch up; "block" never lowers k once the record holds it (a lost member is dropped only while enough others stream), so commits wait until enough standbys stream again. "block" holds within a term: a new primary (after a failover, a switchover, or the first start) starts without a claim, acknowledges commits as soon as it is promoted, on the standbys that follow it as they follow, and raises k up to synchronousCount as they catch up; from then on it never lowers k below what its record reached in the term. Commits acknowledged in that window may rest on the new primary alone (no automatic failover happens meanwhile: the record claims nothing, so none of them is lost to one; docs/design.md, "More than one standby"). With two nodes "block" means the primary never asks to drop to async: its commits wait for the standby; a new primary likewise acknowledges commits alone until the other node follows it.'),
    slots: closedObject({
      enabled: flag().default(true).describe('Keep a physical replication slot for the standby on whichever node is primary (named pgvip_ + the standby\'s applicationName with \'-\' as \'_\', e.g. pgvip_db_b), created on a promoting standby before it promotes, and have the standby stream through it (primary_slot_name): a standby that was down for a while, and an old primary rejoining after a failover, find the WAL they need still there. On PostgreSQL 17+ the agents also set sync_replication_slots, hot_standby_feedback and synchronized_standby_slots, so logical slots created with failover = true survive a failover. false: pgvip creates, drops and names no slot and sets none of this (for operators who manage their own).'),
      maxWalKeepSizeMb: integer(-1)
        .default(8192)
        .meta({ typeLabel: 'MB (integer ≥ -1)' })
        .describe('max_slot_wal_keep_size the agents set on both nodes: the most WAL a slot may hold back on the primary. A standby further behind loses its slot (PostgreSQL invalidates it) and its agent re-seeds it with pg_basebackup, rather than the primary\'s disk filling up. Keep it well below the free space of the WAL volume; -1 means unbounded (a standby down for long can fill the primary\'s disk).'),
    })
      .prefault({})
      .describe('Replication slots for the standby (docs/design.md, "Replication slots").'),
    logicalSlots: closedObject({
      copy: flag().default(false).describe('PostgreSQL 15 and 16 only (17+ keeps logical slots created with failover = true without this): the standby\'s agent keeps a copy of the primary\'s logical (CDC) slots, so their consumers continue on the new primary after a failover. A missing copy is made by copying the slot\'s state file from the primary and restarting the standby (a second or two; only when a slot appears), and every 5 s each copy is moved forward to the primary\'s confirmed position: after a failover a consumer may receive changes a second time, but misses none. Needs slots.enabled, wal_level = logical on both nodes, and hot_standby_feedback (the agents set it while this is on). false: logical slots exist on the primary only and are lost at a failover.'),
      names: listOf(slotName('orders_cdc'), 'replication slot names')
        .default([])
        .meta({ defaultLabel: 'every persistent logical slot' })
        .describe('The logical slots to copy. On the standby a copy whose slot is gone from the primary is dropped, so with the default (all) the standby keeps no logical slots of its own; list names when it should (PostgreSQL 16 decoding on a standby).'),
    })
      .prefault({})
      .describe('Copies of the primary\'s logical slots on the standby (docs/design.md, "Replication slots").'),
  })
    .prefault({})
    .describe('Replication mode and the eligibility bound on lag.'),
  fencing: closedObject({
    mode: oneOf(['read-only', 'fast-stop'])
      .default('read-only')
      .describe('How a primary that lost its lease stops writes: "read-only" puts a block at the top of pg_hba.conf that refuses every login role but the agent\'s (replication still connects), sets default_transaction_read_only and terminates every client session, so no client can write by any path (fast, keeps caches warm and the standby streaming); "fast-stop" runs pg_ctl stop -m fast. Both persist, so a restarted server stays fenced; the agent must be able to write the server\'s hba_file.'),
    commitGuard: oneOf(['auto', 'off'])
      .default('auto')
      .describe('"auto": when PostgreSQL has the pgvip_commit_guard extension loaded (shared_preload_libraries; docs/deploy.md), the agent writes its lease end into it at every renewal, and PostgreSQL itself refuses every write commit after that moment — so a primary frozen past its lease cannot commit a single write when it runs again, before its agent has fenced it. Without the extension the agent notes once that the guard is absent. "off": the agent never arms it (a guard it armed earlier stays armed until PostgreSQL restarts).'),
  })
    .prefault({})
    .describe('How a primary fences itself.'),
  failover: closedObject({
    electionWindowMs: durationMs(0, 60_000)
      .optional()
      .meta({ defaultLabel: 'timings.heartbeatMs' })
      .describe('Three or more nodes: how long a standby that stopped its WAL receiver for an election waits for the final positions of the other eligible standbys before one that stays silent may be passed over (docs/design.md, "More than one standby", Candidate choice). The window ends early once every eligible standby published. With two nodes it has no effect.'),
    minIntervalMs: durationMs(0, 86_400_000)
      .default(0)
      .describe('The witness grants no automatic failover sooner than this after the last one it voted for: while it runs, the vote is refused and failover-blocked says until when. 0: no minimum. It keeps two sick nodes from failing over back and forth, but it adds no safety (votes, leases and fencing keep one writer without it) and leaves the cluster without a primary when the new primary dies inside it: once it runs out, a failover follows only if the standby still counts as streaming (timings.streamingGraceMs), so usually a person has to act. Set it (e.g. 600000) only when a second failover in quick succession should wait for one. pgvip failover --force is never held; switchovers do not start it; a restarted witness keeps it (its state file holds the last failover\'s time; docs/runbook.md, "Failovers back to back").'),
  })
    .prefault({})
    .describe('Limits on automatic failover, applied by the witness.'),
  postgresql: closedObject({
    parameters: postgresParametersSchema
      .default({})
      .meta({ typeLabel: 'mapping of name → value', defaultLabel: 'none' })
      .describe('PostgreSQL settings for both nodes, e.g. { work_mem: 64MB, max_connections: 300 }. Each agent applies them with ALTER SYSTEM and a reload when it starts (a standby too, so a promoted standby has them); a setting that only takes effect after a restart shows as "pending restart" in pgvip status until pgvip restart --pending-restart. Settings pgvip manages itself (synchronous_standby_names, max_slot_wal_keep_size, port, ...) are refused, naming the field to use instead. A name removed from here stays set on the servers until you run ALTER SYSTEM RESET for it (docs/runbook.md, "PostgreSQL parameters").'),
  })
    .prefault({})
    .describe('Cluster-wide PostgreSQL settings, applied by the agents.'),
  timings: TimingsSchema,
  auth: AuthSchema,
  notifications: NotificationsSchema,
  quorum: QuorumSchema,
})
  .superRefine((cluster, ctx) => checkDistinctNodeIds(cluster.nodes, ctx), whenValidAt(['nodes', '*', 'id']))
  .superRefine((cluster, ctx) => checkDistinctApplicationNames(cluster.nodes, ctx), whenValidAt(['nodes', '*', 'id'], ['nodes', '*', 'postgres', 'applicationName']))
  .superRefine((cluster, ctx) => checkNodeMix(cluster, ctx), whenValidAt(['nodes', '*', 'noFailover'], ['quorum', 'backend'], ['replication', 'mode'], ['replication', 'synchronousCount']))
  .superRefine((cluster, ctx) => {
    const clash = cluster.nodes.findIndex((node) => node.id === cluster.witness.id);
    if (clash >= 0) {
      addComposedIssue(ctx, ['witness', 'id'], problem(`is also the id of nodes[${clash}]`, cluster.witness.id, 'give the witness its own id, e.g. witness'));
    }
  }, whenValidAt(['nodes', '*', 'id'], ['witness', 'id']))
  .superRefine((cluster, ctx) => {
    // On etcd the agents address their quorum messages to this id (core/quorum.ts): a node or witness
    // of that name would receive them in etcd's place.
    if (cluster.quorum.backend !== 'etcd') return;
    const reserved = (fix: string) => problem(`is reserved with quorum.backend "etcd": the agents address etcd by it`, ETCD_QUORUM_ID, fix);
    cluster.nodes.forEach((node, i) => {
      if (node.id === ETCD_QUORUM_ID) addComposedIssue(ctx, ['nodes', i, 'id'], reserved('give the node another id, e.g. db-a'));
    });
    if (cluster.witness.id === ETCD_QUORUM_ID) {
      addComposedIssue(ctx, ['witness', 'id'], reserved('give the witness another id, e.g. witness (in the witness file\'s id too)'));
    }
  }, whenValidAt(['nodes', '*', 'id'], ['witness', 'id'], ['quorum', 'backend']))
  .superRefine((cluster, ctx) => {
    // etcd keeps no margin of its own: the lease margin must cover it (core/timings.ts).
    if (cluster.quorum.backend !== 'etcd') return;
    for (const violation of etcdTimingViolations(cluster.timings)) {
      addComposedIssue(ctx, ['timings', violation.field], violation.message, timingIssueKind);
    }
  }, whenValidAt(['timings'], ['quorum', 'backend']))
  .superRefine((cluster, ctx) => {
    if (cluster.vip.discovery !== 'config') return;
    const why = 'is required when vip.discovery is "config"';
    if (cluster.vip.region === undefined) {
      addComposedIssue(ctx, ['vip', 'region'], problem(why, undefined, 'set the AWS region, e.g. eu-west-1, or use discovery: imds'));
    }
    if (cluster.vip.mode === 'secondary-ip' && cluster.vip.prefixLength === undefined) {
      addComposedIssue(ctx, ['vip', 'prefixLength'], problem(why, undefined, 'set the subnet\'s prefix length, e.g. 24, or use discovery: imds'));
    }
    cluster.nodes.forEach((node, i) => {
      if (node.vip?.eniId === undefined) {
        addComposedIssue(ctx, ['nodes', i, 'vip', 'eniId'], problem(why, undefined, `set ${node.id}'s ENI id, e.g. eni-0123456789abcdef0, or use discovery: imds`));
      }
    });
  }, whenValidAt(['vip'], ['nodes', '*', 'vip'], ['nodes', '*', 'id']))
  .superRefine((cluster, ctx) => {
    // review-17b G4: PostgreSQL's ANY k counts walsenders, not names; a standby that reconnects while its
    // old walsender still streams would count twice. Its slot admits one walsender at a time.
    const k = cluster.replication.synchronousCount ?? 1;
    if (cluster.replication.mode === 'sync' && k >= 2 && !cluster.replication.slots.enabled) {
      addComposedIssue(ctx, ['replication', 'synchronousCount'], problem('needs replication.slots.enabled: without slots PostgreSQL may count one standby twice toward ANY k (a reconnected standby beside its old walsender), so a commit could be acknowledged by fewer standbys than k', k, 'enable replication.slots.enabled (a slot admits one walsender at a time), or set synchronousCount: 1'));
    }
  }, whenValidAt(['replication']))
  .superRefine((cluster, ctx) => {
    if (cluster.replication.logicalSlots.copy && !cluster.replication.slots.enabled) {
      addComposedIssue(ctx, ['replication', 'logicalSlots', 'copy'], problem('needs replication.slots.enabled', true, 'the copies reach the primary through the standby\'s physical slot (hot_standby_feedback): enable slots, or set copy: false'));
    }
  }, whenValidAt(['replication']))
  .superRefine((cluster, ctx) => {
    // The VIP must be an address nobody owns permanently, or "moving" it would steal a host's own address.
    const owners: [string, string][] = [['witness.host', cluster.witness.host]];
    cluster.nodes.forEach((node, i) => owners.push([`nodes[${i}].agent.host`, node.agent.host], [`nodes[${i}].postgres.host`, node.postgres.host]));
    const owner = owners.find(([, address]) => address === cluster.vip.address);
    if (owner !== undefined) {
      addComposedIssue(ctx, ['vip', 'address'], problem(`is also ${owner[0]}`, cluster.vip.address, 'the VIP must be an extra address that only the primary holds; give the hosts their own addresses'));
    }
  }, whenValidAt(['vip', 'address'], ['witness', 'host'], ['nodes', '*', 'agent', 'host'], ['nodes', '*', 'postgres', 'host']));

export const ClusterConfigSchema = ClusterObjectSchema.describe('One primary/standby pair, its witness and its VIP.');

// ---- the agent file ---------------------------------------------------------------------------

const AgentObjectSchema = closedObject({
  self: dnsLabel('db-a').describe('Which of cluster.nodes this file configures (its id).'),
  listen: closedObject({
    host: host('0.0.0.0').default('0.0.0.0').describe('Address the agent\'s HTTP server binds to.'),
    port: port().optional().meta({ defaultLabel: 'this node\'s agent.port' }).describe('Port the agent\'s HTTP server binds to.'),
  })
    .prefault({})
    .describe('Where the agent listens.'),
  stateDir: absolutePath('/var/lib/pgvip').default('/var/lib/pgvip').describe('Directory of the durable state file (highest term seen, votes, promises); must survive reboots.'),
  logLevel: logLevel(),
  tls: PeerTlsSchema,
  hooks: HooksSchema,
  rejoin: RejoinSchema,
  cluster: ClusterConfigSchema,
}).superRefine((agent, ctx) => {
  const ids = agent.cluster.nodes.map((node) => node.id);
  if (!ids.includes(agent.self)) {
    const guess = closestMatch(agent.self, ids);
    const hint = guess === undefined ? '' : ` (did you mean "${guess}"?)`;
    addComposedIssue(ctx, ['self'], problem(`names no node of cluster "${agent.cluster.name}"`, agent.self, `use one of ${ids.join(', ')}${hint}`));
  }
}, whenValidAt(['self'], ['cluster', 'nodes', '*', 'id'], ['cluster', 'name']));

export const AgentConfigSchema = AgentObjectSchema.transform((agent) => {
  const node = agent.cluster.nodes.find((n) => n.id === agent.self);
  // The refinement above guarantees `node`; the fallback only keeps the type total.
  return {
    ...agent,
    listen: { host: agent.listen.host, port: agent.listen.port ?? node?.agent.port ?? defaultAgentPort },
  };
}).describe('The file on each database node (default /etc/pgvip/agent.yaml).');

// ---- the witness file ---------------------------------------------------------------------------

const OperatorApiSchema = closedObject({
  host: host('127.0.0.1').default('127.0.0.1').describe('Address the operator API (CLI, dashboard, switchover) binds to. Requests must name it (or loopback, localhost, or one of hostNames) in their Host header.'),
  port: port().default(8010).describe('Port of the operator API.'),
  auth: oneOf(['token', 'disabled'])
    .default('token')
    .describe('"token": every request except /health and the dashboard\'s page needs Authorization: Bearer <the token in tokenFile>. "disabled": no token (UNSAFE: any local user can then switch over, fail over or pause failover; the witness logs a warning at start); loopback host only.'),
  tokenFile: absolutePath('/etc/pgvip/operator.token').optional().describe('File holding the bearer token operators present (mode 0600, owned by the witness\'s user); deploy/install.sh creates /etc/pgvip/operator.token. Required unless auth is "disabled": the API can trigger switchovers.'),
  hostNames: listOf(host('witness.internal'), 'host names')
    .default([])
    .describe('Other names or addresses operators reach the API by (a DNS name, the address behind a wildcard host); requests whose Host header names anything else are refused.'),
  tls: OperatorTlsSchema,
})
  .superRefine((api, ctx) => {
    if (api.auth === 'token' && api.tokenFile === undefined) {
      addComposedIssue(ctx, ['tokenFile'], problem('is required: the operator API can switch over, fail over and pause failover, so it needs a token', undefined, 'set it to a 0600 file holding the operators\' token, e.g. /etc/pgvip/operator.token (deploy/install.sh creates one; or run: (umask 077; openssl rand -hex 32 > /etc/pgvip/operator.token) && chown pgvip: /etc/pgvip/operator.token); operatorApi.auth: disabled runs without one (unsafe)'));
    }
    if (api.auth === 'disabled' && api.tokenFile !== undefined) {
      addComposedIssue(ctx, ['auth'], problem('contradicts operatorApi.tokenFile', api.auth, 'remove auth to require the token in tokenFile, or remove tokenFile to run without a token (unsafe)'));
    }
    if (api.auth === 'disabled' && !isLoopbackHost(api.host)) {
      addComposedIssue(ctx, ['auth'], problem(`may only be "disabled" when operatorApi.host is a loopback address (host is ${api.host})`, api.auth, 'set operatorApi.tokenFile and remove auth, or bind host to 127.0.0.1'));
    }
    if (api.auth === 'token' && api.tls === undefined && !isLoopbackHost(api.host)) {
      // The bearer token goes with every request: over plain HTTP beyond loopback, anyone on the path reads it.
      addComposedIssue(ctx, ['tls'], problem(`is required when operatorApi.host is not a loopback address (host is ${api.host}): without it the operator token crosses the network in clear`, undefined, 'set operatorApi.tls.certFile and keyFile (pgvip init --tls writes them), or bind host to 127.0.0.1 and reach the API through SSH'));
    }
  })
  .prefault({})
  .describe('The operator API: state of every cluster, event history, switchover, maintenance and manual override.');

const WitnessObjectSchema = closedObject({
  id: dnsLabel('witness').default('witness').describe('Name of this witness; each cluster\'s witness.id must match it.'),
  listen: closedObject({
    host: host('0.0.0.0').default('0.0.0.0').describe('Address the witness\'s peer API binds to.'),
    port: port().default(8009).describe('Port of the witness\'s peer API (the clusters\' witness.port).'),
  })
    .prefault({})
    .describe('Where the witness listens for agents.'),
  stateDir: absolutePath('/var/lib/pgvip').default('/var/lib/pgvip').describe('Directory of the durable state (terms, votes, promises, event history); must survive reboots.'),
  logLevel: logLevel(),
  tls: PeerTlsSchema,
  operatorApi: OperatorApiSchema,
  clusters: listOf(ClusterConfigSchema, 'clusters', 1).describe('Every cluster this witness serves, each a cluster block as in the agent files.'),
})
  .superRefine((witness, ctx) => {
    const seen = new Map<string, number>();
    witness.clusters.forEach((cluster, i) => {
      const earlier = seen.get(cluster.name);
      if (earlier !== undefined) {
        addComposedIssue(ctx, ['clusters', i, 'name'], problem(`duplicates clusters[${earlier}].name`, cluster.name, 'every cluster needs its own name'));
      } else {
        seen.set(cluster.name, i);
      }
    });
  }, whenValidAt(['clusters', '*', 'name']))
  .superRefine((witness, ctx) => {
    witness.clusters.forEach((cluster, i) => {
      if (cluster.witness.id !== witness.id) {
        addComposedIssue(ctx, ['clusters', i, 'witness', 'id'], problem(`differs from this witness's id "${witness.id}"`, cluster.witness.id, `set it to "${witness.id}", or change id at the top of this file: agents address their witness by this id`));
      }
    });
  }, whenValidAt(['id'], ['clusters', '*', 'witness', 'id']))
  .superRefine((witness, ctx) => {
    if (witness.operatorApi.port === witness.listen.port) {
      addComposedIssue(ctx, ['operatorApi', 'port'], problem('is also listen.port', witness.operatorApi.port, 'the operator API needs a port of its own, e.g. 8010'));
    }
  }, whenValidAt(['listen', 'port'], ['operatorApi', 'port']));

export const WitnessConfigSchema = WitnessObjectSchema.describe('The file on the witness instance (default /etc/pgvip/witness.yaml).');

export type ClusterConfig = z.output<typeof ClusterConfigSchema>;
export type NodeConfig = ClusterConfig['nodes'][number];
export type VipConfig = ClusterConfig['vip'];
export type NotificationsConfig = ClusterConfig['notifications'];
export type AgentConfig = z.output<typeof AgentConfigSchema>;
export type WitnessConfig = z.output<typeof WitnessConfigSchema>;
