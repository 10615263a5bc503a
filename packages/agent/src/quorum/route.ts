// Where the core's messages to its quorum go when the quorum is not a witness daemon reached over
// HTTP (docs/design.md, Quorum on etcd): the runner hands every message the core sends to `id` to
// `ask`, and steps the answer in as the reply the witness would have sent. With the witness backend
// there is no route: the messages go to the witness like those to the peer.
import type { NodeId, PeerReply, PeerRequest } from '@pgvip/shared/core';

/**
 * The quorum's term as read at the agent's start: a reply from the quorum (answering no request) that
 * the runner steps in before its first tick, so a term the quorum moved past this node's persisted one
 * is adopted as any reply of the quorum's teaches it; or why the quorum could not be read.
 */
export type QuorumTermAtStart =
  | { readonly ok: true; readonly reply: PeerReply; readonly detail: string }
  | { readonly ok: false; readonly why: string };

export interface QuorumRoute {
  /** The id the core sends its quorum's messages to; replies come from it. */
  readonly id: NodeId;
  /** The quorum's answer to `msg`; null: none reaches the core, as after a lost reply. */
  ask(msg: PeerRequest): Promise<PeerReply | null>;
  /** A switchover's handover on the quorum (the `quorum-handover` effect): `term`'s holder names `to` for term + 1. */
  handover(term: number, to: NodeId): Promise<{ readonly ok: boolean; readonly detail: string }>;
  /**
   * The quorum's term record, read at the agent's start (etcd: docs/design.md, Quorum on etcd, "The
   * agent's start"). While a route that has it has not answered once, the runner sends the peer no
   * lease request: a stale term's grant from the standby must not unfence this node.
   */
  termAtStart?(): Promise<QuorumTermAtStart>;
}
