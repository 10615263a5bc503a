// Wires one witness process together: config → durable state → keys, verifier, signers and peer
// clients per cluster → history, metrics, notifiers → one runner and one poller per cluster → the
// two HTTP servers. It builds and stops things; it does not listen (main.ts and tests do).
//
// One witness serves every cluster of its config: each cluster has its own core state, runner,
// poller, peer client and notifier, and all of them share one state file, one history, one
// verifier (it holds every cluster's key) and one pair of servers.
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import {
  PgvipError,
  isPgvipError,
  createPeerClient,
  createSigner,
  createTlsSource,
  transitionWarning,
  expiryWarning,
  createVerifier,
  loadKey,
  promiseMs,
  readSecretFile,
  witnessPreflight,
  type ClusterAuthConfig,
  type ClusterConfig,
  type ClusterKey,
  type NodeConfig,
  type PeerClient,
  type TlsMaterial,
  type TlsSource,
  type WitnessConfig,
} from '@pgvip/shared';
import { systemClock, type Clock } from './clock.js';
import { ClusterRunner } from './cluster-runner.js';
import type { ClusterService } from './cluster-service.js';
import { connectEtcdObserver, observerCallBoundMs } from './etcd-connect.js';
import { EtcdClusterObserver } from './etcd-observer.js';
import type { Notifier, PgvipEvent } from './events.js';
import { openHistory, type History } from './history.js';
import { createWitnessMetrics, type WitnessMetrics } from './metrics.js';
import { checkNotificationSecrets, createNotifier, notificationFailedType } from './notify/index.js';
import { allowedOperatorHosts } from './operator-guard.js';
import { AgentEventsReader } from './agent-events.js';
import { createPoller, type Poller } from './poller.js';
import { buildOperatorServer, buildServer } from './server.js';
import { openWitnessStateStore } from './state-store.js';

/** Builds the notifier of one cluster; `onFailure` records a delivery that failed for good. */
export type NotifierFactory = (
  cluster: ClusterConfig,
  onFailure: (e: PgvipEvent, channel: string, err: Error) => void,
  log: Logger,
) => Notifier;

export interface WitnessDaemonDeps {
  readonly log: Logger;
  readonly clock?: Clock;
  /** Defaults to the webhook/command/e-mail notifier of ./notify. */
  readonly notifierFor?: NotifierFactory;
  readonly history?: { readonly maxFileBytes?: number; readonly keepFiles?: number };
  /** Extra routes on the operator server (the dashboard). */
  readonly extendOperator?: (app: FastifyInstance) => void;
}

export interface WitnessDaemon {
  /** The peer protocol server (listen on config.listen). */
  readonly protocol: FastifyInstance;
  /** The operator API server (listen on config.operatorApi). */
  readonly operator: FastifyInstance;
  /** The clusters whose quorum is this witness (quorum.backend: witness). */
  readonly runners: ReadonlyMap<string, ClusterRunner>;
  /** The clusters whose quorum is etcd, which this witness only observes (quorum.backend: etcd). */
  readonly observers: ReadonlyMap<string, EtcdClusterObserver>;
  readonly history: History;
  readonly metrics: WitnessMetrics;
  readonly stateFile: string;
  /** Starts every cluster's poller, spread over the heartbeat, and the etcd observers' reads. */
  startPolling(): void;
  /**
   * Reads the TLS files of each listener again (SIGHUP) and serves them from the next handshake on.
   * Each listener on its own: one whose files fail their checks keeps its old certificate, the other
   * takes its new one. Logs and resolves with each listener's outcome (empty: no TLS configured).
   */
  reloadTls(): Promise<TlsReload[]>;
  /** Stops polling, closes both servers, flushes the history, closes notifiers and peer clients. */
  close(): Promise<void>;
}

/** One listener's TLS reload: the files now served, or why its old ones still are. */
export type TlsReload =
  | { readonly field: string; readonly ok: true; readonly material: TlsMaterial }
  | { readonly field: string; readonly ok: false; readonly error: Error };

/**
 * Where the witness reaches a node's PostgreSQL. postgres.host may be a loopback address (what the
 * local agent uses); from the witness the server is then reached at the node's agent host, as the
 * peer agent does for streaming.
 */
function probeHost(n: NodeConfig): string {
  const h = n.postgres.host;
  const loopback = h === 'localhost' || h === '::1' || /^127\./.test(h);
  return loopback ? n.agent.host : h;
}

/**
 * How many groups the clusters' polls are spread over within a heartbeat. Not all at once: a burst
 * of every poll would queue them behind each other. Not one slot per cluster either: each wake-up of
 * the event loop has a fixed cost (timers, microtasks, cold caches), and polling a group of clusters
 * in one wake-up costs measurably less CPU than polling each in its own (bench:witness).
 */
export const POLL_SLOTS = 10;

/** When, within a heartbeat, the polls of cluster `index` of `count` start. */
export function pollOffsetMs(index: number, count: number, heartbeatMs: number): number {
  const slots = Math.min(POLL_SLOTS, count);
  return (Math.floor((index * slots) / count) / slots) * heartbeatMs;
}

/**
 * The operator API's token: required unless operatorApi.auth is "disabled" (the config loader
 * already insists on tokenFile; this is the daemon's own check, for configs built in code).
 * Throws PgvipError (config category) naming operatorApi.tokenFile and the fix.
 */
async function operatorToken(api: WitnessConfig['operatorApi']): Promise<string | null> {
  if (api.auth === 'disabled') return null;
  if (api.tokenFile === undefined) {
    throw new PgvipError('PGVIP_CONFIG_INVALID', 'operatorApi.tokenFile: is required: the operator API can switch over, fail over and pause failover; set it to a 0600 file holding the operators\' token, e.g. /etc/pgvip/operator.token (deploy/install.sh creates one), or set operatorApi.auth: disabled (unsafe)');
  }
  const token = (await readSecretFile(api.tokenFile, 'operatorApi.tokenFile')).trim();
  if (token === '') throw new PgvipError('PGVIP_CONFIG_INVALID', `operatorApi.tokenFile: ${api.tokenFile} holds only white space; put the operators' token in it`);
  return token;
}

const defaultNotifierFor: NotifierFactory = (cluster, onFailure, log) =>
  createNotifier(cluster.notifications, { logger: log, onFailure });

/**
 * Throws PgvipError: PGVIP_STATE_CORRUPT (state file unreadable: never start over at term 0),
 * config-category codes for unusable key, token or secret files.
 */
export async function createWitnessDaemon(config: WitnessConfig, deps: WitnessDaemonDeps): Promise<WitnessDaemon> {
  const clock = deps.clock ?? systemClock;
  const log = deps.log;
  // The checks `pgvip check-config` makes (secret files, state directory and file): the first
  // problem stops the start with its code and fix, never a raw EACCES from somewhere later.
  const [problem] = await witnessPreflight(config);
  if (problem !== undefined) throw problem;
  const store = openWitnessStateStore(config.stateDir, clock);

  // Read every secret before anything starts, so a bad file stops the daemon with a clear message.
  const keys = new Map<string, ClusterKey | null>();
  for (const [i, c] of config.clusters.entries()) {
    const field = `clusters[${i}].auth.keyFile`;
    keys.set(c.name, c.auth.disabled || c.auth.keyFile === undefined ? null : await loadKey(c.auth.keyFile, field));
    await checkNotificationSecrets(c.notifications, `clusters[${i}].notifications`);
  }
  const token = await operatorToken(config.operatorApi);
  // TLS files, checked now: a bad key or certificate stops the start with the field and the fix.
  const peerTls = config.tls === undefined ? undefined : await createTlsSource(config.tls, 'tls');
  const operatorTls = config.operatorApi.tls === undefined ? undefined : await createTlsSource(config.operatorApi.tls, 'operatorApi.tls');
  const tlsSources = [peerTls, operatorTls].filter((s): s is TlsSource => s !== undefined);
  for (const s of tlsSources) {
    const expiry = expiryWarning(s.material, `the certificate of ${s.field}`);
    if (expiry !== null) log.warn({ field: s.field }, expiry);
  }

  const auth: Record<string, ClusterAuthConfig> = {};
  for (const c of config.clusters) {
    const key = keys.get(c.name) ?? null;
    const members = c.nodes.map((n) => n.id);
    auth[c.name] = key === null ? { members, authDisabled: true } : { members, key };
  }
  const verifier = createVerifier({ self: config.id, clusters: auth });
  for (const name of verifier.unauthenticatedClusters) {
    log.warn({ cluster: name }, `AUTHENTICATION DISABLED for cluster ${name}: anyone who can reach the witness can steer it (auth.disabled: true is for labs only)`);
  }

  const history = await openHistory({
    dir: path.join(config.stateDir, 'history'),
    clusters: config.clusters.map((c) => c.name),
    clock,
    log: log.child({ component: 'history' }),
    ...deps.history,
  });
  const metrics = createWitnessMetrics();
  const notifierFor = deps.notifierFor ?? defaultNotifierFor;

  const runners = new Map<string, ClusterRunner>();
  const observers = new Map<string, EtcdClusterObserver>();
  const services = new Map<string, ClusterService>();
  const pollers: Poller[] = [];
  const peerClients: PeerClient[] = [];
  const notifiers: Notifier[] = [];
  for (const [index, c] of config.clusters.entries()) {
    const clusterLog = log.child({ cluster: c.name });
    const key = keys.get(c.name) ?? null;
    const signer = createSigner(key === null
      ? { cluster: c.name, sender: config.id, authDisabled: true }
      : { cluster: c.name, sender: config.id, key });
    // tls.transition "listen": the listener takes TLS, but requests stay plain until every listener does.
    const peers = createPeerClient({
      ...(peerTls === undefined || config.tls!.transition === 'listen' ? {} : { tls: peerTls }),
      signer,
      peers: Object.fromEntries(c.nodes.map((n) => [n.id, { host: n.agent.host, port: n.agent.port }])),
      timeoutMs: c.timings.requestTimeoutMs,
    });
    peerClients.push(peers);
    const notifier = notifierFor(
      c,
      (e, channel, err) => {
        // Recorded in the history (and shown to operators), never notified again: the notifier drops
        // events of this type, so a broken channel cannot feed itself.
        services.get(c.name)?.record(notificationFailedType, e.node, `${channel} could not deliver event ${e.id} (${e.type}): ${err.message}`);
      },
      clusterLog.child({ component: 'notify' }),
    );
    notifiers.push(notifier);
    let runner: ClusterRunner | EtcdClusterObserver;
    if (c.quorum.backend === 'etcd') {
      // etcd holds this cluster's quorum: the witness observes it and writes only the operators' keys.
      const port = await connectEtcdObserver(c, { field: `clusters[${index}].quorum.etcd`, timeoutMs: observerCallBoundMs(c.timings) });
      runner = new EtcdClusterObserver({ cluster: c, self: config.id, port, peers, history, notifier, metrics, clock, store, log: clusterLog.child({ component: 'etcd-observer' }) });
      observers.set(c.name, runner);
    } else {
      // An etcd block beside backend witness: the etcd a move would go to (pgvip etcd seed), opened per command.
      const etcd = c.quorum.etcd === undefined ? {} : {
        etcd: () => connectEtcdObserver(c, { field: `clusters[${index}].quorum.etcd`, timeoutMs: observerCallBoundMs(c.timings), seed: true }),
      };
      runner = new ClusterRunner({ cluster: c, self: config.id, store, peers, history, notifier, metrics, clock, ...etcd, log: clusterLog.child({ component: 'runner' }) });
      runners.set(c.name, runner);
    }
    services.set(c.name, runner);
    const service = runner;
    pollers.push(
      createPoller({
        cluster: c.name,
        nodes: c.nodes.map((n) => ({ id: n.id, postgres: { host: probeHost(n), port: n.postgres.port } })),
        heartbeatMs: c.timings.heartbeatMs,
        timeoutMs: c.timings.requestTimeoutMs,
        peers,
        onPoll: (node, status, pgReachable) => service.poll(node, status, pgReachable),
        clock,
        metrics,
        log: clusterLog.child({ component: 'poller' }),
        offsetMs: pollOffsetMs(index, config.clusters.length, c.timings.heartbeatMs),
        events: new AgentEventsReader({
          cluster: c.name,
          peers,
          clock,
          log: clusterLog.child({ component: 'agent-events' }),
          record: (type, node, detail) => service.record(type, node, detail),
        }),
      }),
    );
    if (runner instanceof EtcdClusterObserver) {
      const endpoints = c.quorum.etcd?.endpoints.join(', ') ?? '';
      const detail = `witness ${config.id} started as an observer of ${c.name} on etcd (${endpoints}): etcd holds the cluster's quorum, the witness votes in nothing and grants no lease`;
      runner.record('witness-started', null, detail);
      clusterLog.info({ backend: 'etcd' }, detail);
      continue;
    }
    const d = runner.durable;
    const waitMs = Math.round(promiseMs(c.timings));
    const detail = `witness ${config.id} started in term ${d.term} (primary ${d.primaryOfTerm ?? 'none'}${d.maintenance ? ', MAINTENANCE on' : ''}); it votes for nobody for ${waitMs} ms, the longest promise it may have made before starting`;
    runner.record('witness-started', null, detail);
    clusterLog.info({ term: d.term, primary: d.primaryOfTerm, maintenance: d.maintenance }, detail);
  }

  const protocol = buildServer({
    verifier,
    runners: services,
    log: log.child({ component: 'protocol' }),
    ...(peerTls === undefined
      ? {}
      : {
        tls: {
          material: peerTls.material,
          mutual: config.tls!.mutual,
          plaintextToo: config.tls!.transition !== undefined,
        },
      }),
  });
  peerTls?.serve(protocol.server);
  const transition = config.tls?.transition;
  if (transition !== undefined) log.warn({ transition }, transitionWarning(transition));
  const operator = buildOperatorServer({
    runners: services,
    history,
    metrics,
    token,
    allowedHosts: allowedOperatorHosts(config.operatorApi.host, config.operatorApi.hostNames),
    clock,
    log: log.child({ component: 'operator' }),
    ...(deps.extendOperator === undefined ? {} : { extend: deps.extendOperator }),
    ...(operatorTls === undefined ? {} : { tls: { material: operatorTls.material, mutual: false } }),
  });
  operatorTls?.serve(operator.server);
  if (token === null) {
    log.warn(
      { host: config.operatorApi.host, port: config.operatorApi.port, auth: 'disabled' },
      'OPERATOR API WITHOUT A TOKEN (operatorApi.auth: disabled): any local user can switch over, fail over or pause failover; set operatorApi.tokenFile and remove auth: disabled',
    );
  }

  let closing: Promise<void> | undefined;
  return {
    protocol,
    operator,
    runners,
    observers,
    history,
    metrics,
    stateFile: store.path,
    startPolling() {
      for (const poller of pollers) poller.start();
      // An observer that cannot reach etcd says so in its view and keeps trying: never a failed start.
      for (const o of observers.values()) void o.start();
    },
    async reloadTls() {
      // Each listener on its own, and the log says which one serves what: a bad operator certificate
      // must not hold back the peers' renewal, nor be reported as if both kept their old files.
      const outcomes: TlsReload[] = [];
      for (const s of tlsSources) {
        try {
          const material = await s.reload();
          outcomes.push({ field: s.field, ok: true, material });
          log.info({ field: s.field, fingerprint256: material.fingerprint256, notAfter: material.notAfter }, `TLS files of ${s.field} reloaded`);
          const expiry = expiryWarning(material, `the certificate of ${s.field}`);
          if (expiry !== null) log.warn({ field: s.field }, expiry);
        } catch (e) {
          const error = e instanceof Error ? e : new Error(String(e));
          outcomes.push({ field: s.field, ok: false, error });
          log.error(
            { field: s.field, code: isPgvipError(e) ? e.code : undefined, fingerprint256: s.material.fingerprint256 },
            `SIGHUP: TLS files of ${s.field} not reloaded, its listener keeps serving the certificate it had: ${error.message}`,
          );
        }
      }
      return outcomes;
    },
    close() {
      closing ??= (async () => {
        await Promise.all(pollers.map((p) => p.stop()));
        await Promise.all([protocol.close(), operator.close()]);
        for (const r of runners.values()) r.close();
        await Promise.all([...observers.values()].map((o) => o.close()));
        // Notifiers before the history: a delivery that fails during their close grace is still recorded.
        await Promise.all(notifiers.map((n) => n.close()));
        await history.close();
        await Promise.all(peerClients.map((p) => p.close()));
        log.info('witness stopped');
      })();
      return closing;
    },
  };
}
