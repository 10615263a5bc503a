// Opens the agent's quorum on etcd from its config: reads the client files the etcd block names and
// builds the etcd3 client (client.ts) under EtcdAgentQuorum. This is the one module of the agent
// that loads etcd3 (with gRPC and its .proto files, some MB of memory): daemon.ts imports it
// dynamically, only when cluster.quorum.backend is etcd, so a witness cluster's agent never loads it.
import type { Logger } from 'pino';
import { loadEtcdClientFiles, type ClusterConfig } from '@pgvip/shared';
import type { AgentSettings } from '@pgvip/shared/core';
import type { MonotonicClock } from '../../clock.js';
import { EtcdAgentQuorum } from './agent-quorum.js';
import { EtcdQuorum } from './client.js';
import { KeepLeaderAway } from './leadership.js';

const field = 'cluster.quorum.etcd';

export async function openEtcdAgentQuorum(
  cluster: ClusterConfig, settings: AgentSettings, quorumId: string, logger: Logger, clock: MonotonicClock,
): Promise<EtcdAgentQuorum> {
  const etcd = cluster.quorum.etcd;
  if (etcd === undefined) throw new Error(`${field} is missing with quorum.backend etcd (the config's checks require it)`);
  const port = new EtcdQuorum({
    endpoints: etcd.endpoints,
    prefix: etcd.prefix,
    cluster: cluster.name,
    // Every etcd call ends within the agent's request timeout, as a request to the witness does.
    timeoutMs: settings.timings.requestTimeoutMs,
    // The TLS and password files, read and checked as agentPreflight checked them.
    ...(await loadEtcdClientFiles(etcd, field)),
    clock,
  });
  logger.info({ endpoints: etcd.endpoints, prefix: etcd.prefix }, 'the cluster\'s quorum is etcd');
  // Two-node clusters keep their behaviour unless asked (the default is on from three nodes).
  const keepLeaderAway = keepLeaderOffPrimary(etcd.keepLeaderOffPrimary, settings.nodes?.length ?? 2)
    ? new KeepLeaderAway({ port, endpoints: etcd.endpoints, logger: logger.child({ component: 'etcd' }), clock })
    : undefined;
  return new EtcdAgentQuorum(port, {
    cluster: cluster.name,
    self: settings.self,
    quorumId,
    timings: settings.timings,
    replication: settings.replication,
    nodes: settings.nodes,
    logger,
    clock,
    ...(keepLeaderAway === undefined ? {} : { keepLeaderAway }),
  });
}

/** quorum.etcd.keepLeaderOffPrimary, its default by the number of database nodes. */
export function keepLeaderOffPrimary(configured: boolean | undefined, nodeCount: number): boolean {
  return configured ?? nodeCount >= 3;
}
