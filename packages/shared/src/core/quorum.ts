// Who holds the cluster's quorum (docs/design.md, Quorum on etcd): the witness, pgvip's own third
// voter (the default), or an etcd cluster. The core does not talk to etcd: it sends the same
// messages (lease and vote requests, releases, sync updates) to its quorum's id, and the shell of an
// agent on etcd answers the ones addressed to ETCD_QUORUM_ID from etcd (EtcdQuorumBridge). What the
// backend changes in the core is only what it says (reasons, notifications) and what the witness
// core refuses on etcd (it observes; it never grants or votes).

import type { NodeId } from './messages.js';

export type QuorumBackend = 'witness' | 'etcd';

/**
 * The id an agent on etcd sends its quorum messages to, and the sender of their answers. The config
 * reserves it: with `quorum.backend: etcd` no node and no witness may be named so.
 */
export const ETCD_QUORUM_ID = 'etcd';

/**
 * An agent's quorum: the backend, and the id its lease and vote requests, releases and sync updates go
 * to (the witness's id, or ETCD_QUORUM_ID).
 */
export interface Quorum {
  readonly backend: QuorumBackend;
  readonly id: NodeId;
}

/** The quorum of a cluster on the witness `witnessId` (the default), or on etcd. */
export function quorumOf(backend: QuorumBackend, witnessId: NodeId): Quorum {
  return backend === 'etcd' ? { backend, id: ETCD_QUORUM_ID } : { backend, id: witnessId };
}

/** The quorum as reasons and notifications name it: "the witness" or "etcd". */
export function quorumName(backend: QuorumBackend): string {
  return backend === 'etcd' ? 'etcd' : 'the witness';
}
