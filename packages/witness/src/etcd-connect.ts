// The etcd client of one cluster on etcd, for the witness in etcd mode: the files the config's
// quorum.etcd block names, read as the daemon starts (a bad file stops the start with its field and
// fix), and the observer of @pgvip/agent/quorum/etcd, loaded only when a cluster is on etcd: etcd3
// and gRPC cost a witness that serves only witness-mode clusters nothing.
import { loadEtcdClientFiles, type ClusterConfig } from '@pgvip/shared';
import type { EtcdObserverPort } from '@pgvip/agent/quorum/etcd';

export interface EtcdConnectOptions {
  /** Config field of the block, for messages: clusters[i].quorum.etcd. */
  readonly field: string;
  /** The bound on every etcd call (observerCallBoundMs of the cluster's timings). */
  readonly timeoutMs: number;
  /** For `pgvip etcd seed`: the cluster's block while its backend is still the witness. */
  readonly seed?: boolean;
}

/**
 * The witness's bound on one etcd call: the cluster's requestTimeoutMs, but at least a second. The
 * observer decides no failover (etcd and the agents do): its reads show the cluster and carry the
 * operators' commands, whose txns compare what they read. Bounded by the peers' 150 ms default, a read
 * under load on a busy host failed an operator's switchover for nothing.
 */
export function observerCallBoundMs(timings: { readonly requestTimeoutMs: number }): number {
  return Math.max(timings.requestTimeoutMs, 1000);
}

/** Throws PgvipError (config category) for an unreadable CA, certificate, key or password file. */
export async function connectEtcdObserver(cluster: ClusterConfig, o: EtcdConnectOptions): Promise<EtcdObserverPort> {
  const etcd = cluster.quorum.etcd;
  if ((cluster.quorum.backend !== 'etcd' && o.seed !== true) || etcd === undefined) throw new RangeError(`cluster ${cluster.name} is not on etcd`);
  const files = await loadEtcdClientFiles(etcd, o.field);
  const { EtcdObserver } = await import('@pgvip/agent/quorum/etcd');
  return new EtcdObserver({
    endpoints: etcd.endpoints,
    prefix: etcd.prefix,
    cluster: cluster.name,
    timeoutMs: o.timeoutMs,
    ...files,
  });
}
