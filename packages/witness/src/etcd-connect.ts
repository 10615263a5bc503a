// The etcd client of one cluster on etcd, for the witness in etcd mode: the files the config's
// quorum.etcd block names, read as the daemon starts (a bad file stops the start with its field and
// fix), and the observer of @pgvip/agent/quorum/etcd, loaded only when a cluster is on etcd: etcd3
// and gRPC cost a witness that serves only witness-mode clusters nothing.
import { loadEtcdClientFiles, type ClusterConfig } from '@pgvip/shared';
import type { EtcdObserverPort } from '@pgvip/agent/quorum/etcd';

export interface EtcdConnectOptions {
  /** Config field of the block, for messages: clusters[i].quorum.etcd. */
  readonly field: string;
  /** The bound on every etcd call (the cluster's requestTimeoutMs). */
  readonly timeoutMs: number;
  /** For `pgvip etcd seed`: the cluster's block while its backend is still the witness. */
  readonly seed?: boolean;
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
