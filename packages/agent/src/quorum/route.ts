// Where the core's messages to its quorum go when the quorum is not a witness daemon reached over
// HTTP (docs/design.md, Quorum on etcd): the runner hands every message the core sends to `id` to
// `ask`, and steps the answer in as the reply the witness would have sent. With the witness backend
// there is no route: the messages go to the witness like those to the peer.
import type { NodeId, PeerReply, PeerRequest } from '@pgvip/shared/core';

export interface QuorumRoute {
  /** The id the core sends its quorum's messages to; replies come from it. */
  readonly id: NodeId;
  /** The quorum's answer to `msg`; null: none reaches the core, as after a lost reply. */
  ask(msg: PeerRequest): Promise<PeerReply | null>;
  /** A switchover's handover on the quorum (the `quorum-handover` effect): `term`'s holder names `to` for term + 1. */
  handover(term: number, to: NodeId): Promise<{ readonly ok: boolean; readonly detail: string }>;
}
