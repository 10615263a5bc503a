// Wires an agent from its config: durable state, keys, peers, PostgreSQL and VIP ports, the loop and
// the HTTP server. Ports can be injected (tests use fakes); main.ts passes the real ones.
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import {
  agentDurableSchema,
  agentPreflight,
  agentStateFileNames,
  bootCountSchema,
  createDurableFile,
  createPeerClient,
  createSigner,
  createTlsSource,
  tlsMode,
  transitionWarning,
  expiryWarning,
  createVerifier,
  loadKey,
  readSecretFile,
  quorumTimingsOf,
  type AgentConfig,
  type ClusterConfig,
  type ClusterKey,
  type NodeConfig,
  type TlsMaterial,
} from '@pgvip/shared';
import {
  bootAgent, defaultAgentSettings, leaseValidMs, quorumOf, timingWarnings, type AgentSettings,
} from '@pgvip/shared/core';
import { monotonicNow, type MonotonicClock } from './clock.js';
import { AgentHooks } from './hooks/hooks.js';
import { createAgentMetrics } from './metrics.js';
import { applyClusterParametersTo } from './postgres/cluster-parameters.js';
import { LocalPostgres } from './postgres/local-postgres.js';
import { slotNameFor, type PgEndpoint, type PostgresPort } from './postgres/port.js';
import { reseedMethodsOf } from './postgres/reseed.js';
import { SystemdWatchdog, type LoopKeepAlive } from './watchdog.js';
import { AgentRunner } from './runner.js';
import { buildServer } from './server.js';
import { LogicalSlotCopier } from './logical-slot-copy.js';
import { SlotKeeper, isSettledStandby } from './slot-keeper.js';
import { stopDecisionLoops } from './shutdown.js';
import type { VipPort } from './vip/port.js';

export interface AgentDaemonOptions {
  readonly logger: Logger;
  readonly vip: VipPort;
  readonly pg?: PostgresPort;
  readonly clock?: MonotonicClock;
  /** Listen on the configured address (default true; tests may use inject()). */
  readonly listen?: boolean;
  /** Overrides the configured listen port (0 = any free port; tests). */
  readonly port?: number;
  readonly onFatal?: (err: Error) => void;
  /** Told after every finished heartbeat; default: systemd's watchdog when the unit has WatchdogSec= (watchdog.ts). */
  readonly keepAlive?: LoopKeepAlive | null;
}

export interface AgentDaemon {
  readonly app: FastifyInstance;
  readonly runner: AgentRunner;
  readonly settings: AgentSettings;
  /** The port the HTTP server listens on (0 when not listening). */
  readonly port: number;
  /**
   * Reads the TLS files again and serves the new certificate from the next handshake on (SIGHUP).
   * Resolves with the new material, null without TLS; throws PGVIP_TLS_FILE, leaving the old in use.
   */
  reloadTls(): Promise<TlsMaterial | null>;
  close(): Promise<void>;
}

function nodes(cluster: ClusterConfig, self: string): { me: NodeConfig; peer: NodeConfig } {
  const me = cluster.nodes.find((n) => n.id === self);
  const peer = cluster.nodes.find((n) => n.id !== self);
  if (me === undefined || peer === undefined) throw new Error(`node ${self} is not in cluster ${cluster.name}`);
  return { me, peer };
}

/**
 * The N-node settings of the core from the cluster config: every node in config order with its
 * priority and noFailover, ANY k, the degrade mode and the election window (docs/design.md, "More
 * than one standby").
 */
export function nodeSettingsOf(cluster: ClusterConfig): Pick<AgentSettings, 'nodes' | 'synchronousCount' | 'degrade' | 'electionWindowMs'> {
  return {
    nodes: cluster.nodes.map((n) => ({ id: n.id, priority: n.priority, noFailover: n.noFailover })),
    synchronousCount: cluster.replication.synchronousCount ?? 1,
    degrade: cluster.replication.degrade,
    electionWindowMs: cluster.failover.electionWindowMs ?? cluster.timings.heartbeatMs,
  };
}

/** How this agent reaches a node's PostgreSQL from outside that node (for pg_rewind / streaming). */
function remoteEndpoint(n: NodeConfig, password: string | undefined): PgEndpoint {
  const local = n.postgres.host === '127.0.0.1' || n.postgres.host === 'localhost' || n.postgres.host === '::1';
  return {
    host: local ? n.agent.host : n.postgres.host,
    port: n.postgres.port,
    user: n.postgres.user,
    database: n.postgres.database,
    ...(password === undefined ? {} : { password }),
  };
}

function keepAliveOf(
  opts: AgentDaemonOptions,
  logger: Logger,
  clock: MonotonicClock,
): { keepAlive?: LoopKeepAlive } {
  if (opts.keepAlive !== undefined) return opts.keepAlive === null ? {} : { keepAlive: opts.keepAlive };
  const watchdog = SystemdWatchdog.fromEnv(process.env, logger.child({ component: 'watchdog' }), clock);
  if (watchdog !== null) {
    logger.info({ watchdogMs: watchdog.watchdogMs }, 'systemd watchdog on: a heartbeat that does not finish gets the agent restarted');
  }
  return watchdog === null ? {} : { keepAlive: watchdog };
}

export async function startAgentDaemon(cfg: AgentConfig, opts: AgentDaemonOptions): Promise<AgentDaemon> {
  const cluster = cfg.cluster;
  const { me, peer } = nodes(cluster, cfg.self);
  const logger = opts.logger.child({ cluster: cluster.name, node: cfg.self });
  // The checks `pgvip check-config` makes (secret files, state directory and files): the first
  // problem stops the start with its code and fix.
  const [problem] = await agentPreflight(cfg);
  if (problem !== undefined) throw problem;
  const clock = opts.clock ?? monotonicNow;
  const settings = defaultAgentSettings({
    cluster: cluster.name,
    self: me.id,
    peer: peer.id,
    witness: cluster.witness.id,
    // On etcd the quorum messages go to ETCD_QUORUM_ID, answered from etcd (docs/design.md, Quorum on etcd).
    quorum: quorumOf(cluster.quorum.backend, cluster.witness.id),
    timings: cluster.timings,
    replication: cluster.replication.mode,
    lagBytesMax: BigInt(cluster.replication.lagBytesMax),
    fencing: cluster.fencing.mode,
    // A before-promote hook may veto the promotion: the VIP then waits for it (docs/hooks.md).
    ...(cfg.hooks?.beforePromote === undefined ? {} : { vipAfterPromotion: true }),
    ...nodeSettingsOf(cluster),
  });
  // Safe timings that work against the cluster (on etcd: a leader change longer than the lease allows).
  for (const warning of timingWarnings(cluster.timings, quorumTimingsOf(cluster.quorum))) {
    logger.warn({ timings: cluster.timings }, warning);
  }

  let key: ClusterKey | null = null;
  if (cluster.auth.disabled) {
    logger.warn('AUTHENTICATION IS DISABLED for this cluster: any host that reaches the agent port can drive failovers');
  } else {
    key = await loadKey(cluster.auth.keyFile!, 'cluster.auth.keyFile');
  }
  const password = me.postgres.passwordFile === undefined ? undefined : await readSecretFile(me.postgres.passwordFile, `nodes[${me.id}].postgres.passwordFile`);
  const peerPassword = peer.postgres.passwordFile === undefined ? password : undefined;

  // Every database node: with three or more the agent polls and is polled by each (docs/design.md,
  // "More than one standby"); `peer` is the first other node, which the two-node paths use.
  const others = cluster.nodes.filter((n) => n.id !== me.id);
  const members = [...cluster.nodes.map((n) => n.id), cluster.witness.id];
  const signer = key === null
    ? createSigner({ cluster: cluster.name, sender: me.id, authDisabled: true })
    : createSigner({ cluster: cluster.name, sender: me.id, key });
  const verifier = createVerifier({
    self: me.id,
    clusters: { [cluster.name]: key === null ? { members, authDisabled: true } : { members, key } },
  });
  // TLS (tls block): the files are checked now, so a bad key stops the start with its field and fix.
  const tls = cfg.tls === undefined ? undefined : await createTlsSource(cfg.tls, 'tls');
  if (tls !== undefined) {
    const expiry = expiryWarning(tls.material, `the certificate in ${cfg.tls!.certFile}`);
    if (expiry !== null) logger.warn({ certFile: cfg.tls!.certFile }, expiry);
  }
  // tls.transition "listen": the listener takes TLS, but requests stay plain until every listener does.
  const peers = createPeerClient({
    ...(tls === undefined || cfg.tls!.transition === 'listen' ? {} : { tls }),
    signer,
    peers: {
      ...Object.fromEntries(others.map((n) => [n.id, { host: n.agent.host, port: n.agent.port }])),
      [cluster.witness.id]: { host: cluster.witness.host, port: cluster.witness.port },
    },
    timeoutMs: cluster.timings.requestTimeoutMs,
    // Grantors refuse a lease this node would count longer than their promise covers (mismatched timings).
    leaseValidMs: leaseValidMs(cluster.timings),
  });

  const files = agentStateFileNames(cluster.name);
  const stateFile = createDurableFile(
    path.join(cfg.stateDir, files.state),
    agentDurableSchema,
    { term: 0, primaryOfTerm: null },
  );
  const durable = stateFile.load();
  // Every process's lease-request seqs start above those of all earlier processes of this node, so
  // grantors can tell a delayed release from an earlier process from a current one.
  const bootFile = createDurableFile(path.join(cfg.stateDir, files.boots), bootCountSchema, 0);
  const boots = bootFile.load() + 1;
  bootFile.save(boots);

  // A port passed in belongs to the caller; one made here is closed with the daemon.
  const ownPg = opts.pg === undefined;
  const pg =
    opts.pg ??
    new LocalPostgres({
      nodeName: me.postgres.applicationName,
      host: me.postgres.host,
      port: me.postgres.port,
      user: me.postgres.user,
      database: me.postgres.database,
      ...(password === undefined ? {} : { password }),
      dataDir: me.postgres.dataDir,
      binDir: me.postgres.binDir,
      osUser: me.postgres.osUser,
      ...(cluster.replication.slots.enabled
        ? {
          maxSlotWalKeepSizeMb: cluster.replication.slots.maxWalKeepSizeMb,
          peerSlotName: slotNameFor(peer.postgres.applicationName),
          // Three or more nodes: logical decoding (PostgreSQL 17+) waits for every promotable standby.
          ...(others.length > 1
            ? {
              standbySlotNames: others.filter((n) => !n.noFailover).map((n) => slotNameFor(n.postgres.applicationName)),
            }
            : {}),
          ...(cluster.replication.logicalSlots.copy
            ? { logicalSlotCopy: { names: cluster.replication.logicalSlots.names } }
            : {}),
        }
        : {}),
      reseedMethods: reseedMethodsOf(cfg.rejoin),
    });
  try {
    const report = await pg.ensureManagedSettings();
    if (report.changed.length > 0) logger.info({ changed: report.changed }, 'applied managed postgresql settings');
    if (report.pendingRestart.length > 0) logger.warn({ pendingRestart: report.pendingRestart }, 'managed settings wait for a postgresql restart');
    const lost = report.logicalSlotsLostAtFailover ?? [];
    if (lost.length > 0) {
      logger.warn(
        { slots: lost },
        `logical replication slots ${lost.join(', ')} would be lost at a failover: PostgreSQL 17+ with failover = true keeps them, ` +
          'before 17 replication.logicalSlots.copy does (docs/design.md, "Replication slots")',
      );
    }
  } catch (e) {
    logger.warn({ err: e }, 'could not apply managed postgresql settings now; will run without them until the next start');
  }
  // Only a LocalPostgres has a server to apply them to (a test's fake port has none).
  if (pg instanceof LocalPostgres) await applyParameters(pg.config, cluster.postgresql.parameters, logger);

  const metrics = createAgentMetrics({ cluster: cluster.name, node: me.id });
  const slots = cluster.replication.slots.enabled
    ? {
      self: slotNameFor(me.postgres.applicationName),
      peer: slotNameFor(peer.postgres.applicationName),
      // A primary keeps one for every other node (with two: the peer's).
      others: others.map((n) => slotNameFor(n.postgres.applicationName)),
    }
    : undefined;
  const peerEndpoint = remoteEndpoint(peer, peerPassword);
  // Any other node: this node's password when it names no file of its own, as for the peer.
  const otherEndpoint = (n: NodeConfig) =>
    remoteEndpoint(n, n.postgres.passwordFile === undefined ? password : undefined);
  // On etcd, the core's quorum messages are answered by etcd (docs/design.md, Quorum on etcd). etcd3
  // is loaded only then: a witness cluster's agent does not carry gRPC in its memory.
  const quorum = cluster.quorum.backend === 'etcd'
    ? await (await import('./quorum/etcd/open.js')).openEtcdAgentQuorum(cluster, settings, settings.quorum.id, logger, clock)
    : null;
  const runner = new AgentRunner({
    initial: bootAgent(settings, durable, clock(), boots * 2 ** 32),
    ports: {
      pg,
      vip: opts.vip,
      endpoints: {
        ...Object.fromEntries(others.map((n) => [n.id, n.id === peer.id ? peerEndpoint : otherEndpoint(n)])),
        [me.id]: remoteEndpoint(me, password),
      },
      names: Object.fromEntries(cluster.nodes.map((n) => [n.id, n.postgres.applicationName])),
      promoteWaitSeconds: 60,
      ...(slots === undefined ? {} : { slots }),
      // A switchover's handover is recorded by etcd's txn first; the witness has nothing to record.
      ...(quorum === null ? {} : { quorumHandover: (term: number, to: string) => quorum.handover(term, to) }),
    },
    peers,
    stateFile,
    logger,
    metrics,
    clock,
    commitGuard: cluster.fencing.commitGuard,
    hooks: new AgentHooks({ config: cfg.hooks, logger, metrics }),
    ...keepAliveOf(opts, logger, clock),
    ...(quorum === null ? {} : { quorum }),
    onFatal:
      opts.onFatal ??
      ((err) => {
        logger.fatal({ err }, 'cannot persist durable state: stopping so that no action runs on an unpersisted term');
        process.exit(70);
      }),
  });
  const app = buildServer({
    runner,
    events: runner.events,
    verifier,
    metrics,
    logger,
    clock,
    ...(tls === undefined
      ? {}
      : { tls: { material: tls.material, mutual: cfg.tls!.mutual, plaintextToo: cfg.tls!.transition !== undefined } }),
  });
  tls?.serve(app.server);
  let port = 0;
  if (opts.listen !== false) {
    await app.listen({ host: cfg.listen.host, port: opts.port ?? cfg.listen.port });
    port = (app.server.address() as { port: number }).port;
    logger.info({ host: cfg.listen.host, port, tls: tlsMode(cfg.tls) }, 'agent listening');
    const transition = cfg.tls?.transition;
    if (transition !== undefined) logger.warn({ transition }, transitionWarning(transition));
  }
  runner.start();
  quorum?.start(runner);
  const slotKeeper = slots === undefined
    ? null
    : new SlotKeeper({
      pg,
      slots,
      peerEndpoint,
      // A standby streams from the term's primary, whichever node that is.
      endpoints: Object.fromEntries(others.map((n) => [n.id, n.id === peer.id ? peerEndpoint : otherEndpoint(n)])),
      state: () => runner.state,
      logger,
      registry: metrics.registry,
      clock,
      // Copies of logical slots need the data directory, which only a LocalPostgres has.
      ...(cluster.replication.logicalSlots.copy && pg instanceof LocalPostgres
        ? {
          logical: new LogicalSlotCopier({
            pg,
            config: pg.config,
            names: cluster.replication.logicalSlots.names,
            physicalSlot: slots.self,
            exclusive: (work) => pg.exclusive(work),
            logger,
            registry: metrics.registry,
            clock,
            mayRestart: () => isSettledStandby(runner.state),
          }),
        }
        : {}),
    });
  slotKeeper?.start();
  return {
    app,
    runner,
    settings,
    port,
    async reloadTls() {
      if (tls === undefined) return null;
      const m = await tls.reload();
      logger.info({ certFile: cfg.tls!.certFile, fingerprint256: m.fingerprint256, notAfter: m.notAfter }, 'TLS files reloaded');
      const expiry = expiryWarning(m, `the certificate in ${cfg.tls!.certFile}`);
      if (expiry !== null) logger.warn({ certFile: cfg.tls!.certFile }, expiry);
      return m;
    },
    async close() {
      await slotKeeper?.stop();
      await stopDecisionLoops(runner, quorum);
      await app.close();
      await peers.close();
      if (ownPg) pg.close();
    },
  };
}

/**
 * postgresql.parameters, on this node at every start (a standby too: a promoted standby must have
 * them). A restart-only one then shows as pending restart (pgvip status; pgvip restart
 * --pending-restart). A value PostgreSQL refuses is logged with its field; the others still apply.
 */
async function applyParameters(
  config: LocalPostgres['config'], parameters: Readonly<Record<string, string>>, logger: Logger,
): Promise<void> {
  if (Object.keys(parameters).length === 0) return;
  try {
    const r = await applyClusterParametersTo(config, parameters);
    if (r.changed.length > 0) logger.info({ changed: r.changed }, 'applied postgresql.parameters');
    for (const f of r.failed) {
      logger.error({ parameter: f.name }, `cluster.postgresql.parameters.${f.name}: PostgreSQL refused it (${f.error}); correct the value in the cluster config and restart the agent`);
    }
  } catch (e) {
    logger.warn({ err: e }, 'could not apply postgresql.parameters now (postgresql unreachable?); the next start of the agent applies them');
  }
}
