// The core's messages to the witness, answered by etcd (docs/design.md, Quorum on etcd, "The core's
// messages on etcd"): the agent's core keeps sending lease requests, vote requests, releases and sync
// updates to its quorum, and this bridge turns each into the etcd operations of the port and the
// outcome into the reply the witness would have sent. The core stays as it is; what it counts does
// too, because every etcd call here is sent after the core's step that asked for it, so validity the
// core counts from its own send time is never longer than what etcd granted.
import { PROTOCOL_VERSION, type LeaseReply, type NodeId, type PeerReply, type PeerRequest, type VoteReply } from '@pgvip/shared';
import {
  electionDecision, NO_CLAIM, rankCandidates, type CandidatePosition, type ElectionDecision, type NodeTraits,
  type RankingRules, type VoteRequest, type WithdrawnPosition,
} from '@pgvip/shared/core';
import { holderProblem } from './view.js';
import type { Claim, ClusterView, EtcdQuorumPort, Holder, LeaseId, PositionSeen } from './port.js';
import { grantorsOf, type PositionRecord, type TermRecord } from './records.js';

export interface EtcdBridgeOptions {
  readonly cluster: string;
  readonly self: NodeId;
  /** The id the core sends its quorum messages to (its settings.witness); replies come from it. */
  readonly quorumId: NodeId;
  readonly leaseMs: number;
  readonly replication: 'sync' | 'async';
  /**
   * Every database node of the config (self included): the grantors a new term's record names.
   * Absent: old-form term records, whose grantor is "the other node" (two nodes only).
   */
  readonly nodes?: readonly NodeTraits[];
  /** The agent's monotonic clock (default: the port's, else performance.now). */
  readonly clock?: () => number;
  /**
   * How long a standby that ranks ahead of this one may hold its published position without winning
   * before this one decides without it (default leaseMs). An alive candidate that ranks first wins at
   * its next ask; one that died after publishing would otherwise be yielded to for ever.
   */
  readonly passOverAfterMs?: number;
}

/** Our leader key's holder for a term; or none, with the view that shows it; or etcd did not answer. */
type KnownHolder =
  | { readonly holder: Holder }
  | { readonly holder: null; readonly view: ClusterView }
  | { readonly why: string };

export class EtcdQuorumBridge {
  readonly #port: EtcdQuorumPort;
  readonly #o: EtcdBridgeOptions;
  /** The lease our leader key is on, once we hold (or found) one, and the grantors of its term record. */
  #held: { term: number; lease: LeaseId; grantors: readonly NodeId[] | null } | null = null;
  /** The final position this bridge last published (its bytes' meaning), so a re-ask writes nothing. */
  #published: string | null = null;
  /** When each position of the election (term) was first seen at its mod revision: who has had time to win. */
  #seen: { term: number; at: Map<string, { modRevision: string; sinceMs: number }> } = { term: 0, at: new Map() };

  constructor(port: EtcdQuorumPort, opts: EtcdBridgeOptions) {
    this.#port = port;
    this.#o = opts;
  }

  /**
   * What the quorum answers to `msg`; null for messages that have no answer from it. `answerBy` (the
   * bridge's clock): when the caller stops waiting for the answer; a withdrawn vote may use the time
   * left to wait for positions (absent: it never waits).
   */
  async ask(msg: PeerRequest, answerBy?: number): Promise<PeerReply | null> {
    switch (msg.kind) {
      case 'lease-request':
        return this.#lease(msg.term, msg.seq, answerBy);
      case 'vote-request':
        if (msg.withdrawn === undefined) return this.#vote(msg.term);
        return this.#withdrawnVote(msg, msg.withdrawn, answerBy ?? null);
      case 'lease-release':
        return this.#release(msg.term);
      case 'sync-update':
        if (msg.change === 'record') return this.#sync(msg.term, msg.claim);
        return this.#sync(msg.term, msg.change === 'restore' ? msg.standby : null);
      case 'position-clear':
        return this.#clearPosition(msg.term);
      case 'switchover-request':
      case 'handover':
      case 'manual-promote':
        return null;
      default:
        return null;
    }
  }

  /**
   * A switchover's handover txn (docs/design.md, Quorum on etcd): as the holder of `term`, write the
   * term record {term + 1, to} and delete our leader key, in one txn. It must commit before the core
   * sends the handover message, or the successor would hold term + 1 while etcd still says `term` and
   * its same-term take would fail. Refused: the core aborts the switchover and stays primary.
   */
  async handover(term: number, to: NodeId): Promise<{ readonly ok: boolean; readonly detail: string }> {
    const known = await this.#knownHolder(term);
    if ('why' in known) return { ok: false, detail: `handover txn not run: ${known.why}` };
    if (known.holder === null) return { ok: false, detail: `handover txn not run: no leader key of ${this.#o.self} for term ${term}` };
    const r = await this.#port.handover(known.holder, to, this.#grantors(to));
    if (!r.ok && r.view === null) {
      // No answer (a deadline, a lost reply): the txn may have committed. Read before reporting, since
      // a handover reported failed while etcd names the successor would leave two nodes in doubt.
      const seen = await this.#port.read();
      const record = seen.ok ? seen.view.term?.value : undefined;
      if (!seen.ok || record?.term !== term + 1 || record.primary !== to || seen.view.leader !== null) {
        return { ok: false, detail: `handover txn not confirmed: ${r.why}` };
      }
    } else if (!r.ok) {
      return { ok: false, detail: `handover txn refused: ${r.why}` };
    }
    // Our key went with the txn; its lease holds nothing more (best effort: it ends at its TTL anyway).
    this.#held = null;
    await this.#port.revokeLease(known.holder.lease);
    return { ok: true, detail: `etcd's term record names ${to} for term ${term + 1}` };
  }

  /**
   * etcd's term record as the quorum's reply, read at the agent's start (docs/design.md, Quorum on
   * etcd, "The agent's start"): a refused lease reply with seq 0, which answers none of the core's
   * requests (their seqs start at 1), so the core only learns from it what any reply of the
   * quorum's teaches: a newer term and its primary, and the maintenance flag. A term record that is
   * not pgvip's is no answer: nothing may be learned from it, and a lower term would hide a higher.
   */
  async termAtStart(): Promise<{ readonly reply: LeaseReply; readonly detail: string } | { readonly why: string }> {
    const seen = await this.#port.read();
    if (!seen.ok) return { why: seen.why };
    const bad = seen.view.bad.find((b) => b.key.endsWith('/term'));
    if (bad !== undefined) return { why: `${bad.key} holds a value pgvip did not write (${bad.problem}): an operator must look` };
    const record = seen.view.term?.value;
    const detail = record === undefined ? 'no term record yet' : `term ${record.term} for ${record.primary}`;
    return { reply: this.#leaseReply(0, false, `etcd's term record at the agent's start: ${detail}`, seen.view, 0), detail };
  }

  /** `answerBy`: the renewal may take until then (the caller's bound on a lease request's answer). */
  async #lease(term: number, seq: number, answerBy?: number | null): Promise<LeaseReply> {
    const refuse = (reason: string, v: ClusterView | null): LeaseReply => this.#leaseReply(seq, false, reason, v, term);
    const known = await this.#knownHolder(term);
    if ('why' in known) return refuse(known.why, null);
    let view: ClusterView;
    if (known.holder === null) {
      view = known.view;
    } else {
      const withinMs = answerBy === undefined || answerBy === null ? undefined : Math.max(1, answerBy - this.#now());
      const r = await this.#port.renew(known.holder, withinMs);
      if (r.renewed && r.ttlS * 1000 >= this.#o.leaseMs) return this.#leaseReply(seq, true, 'renewed', r.view, term);
      if (r.renewed) {
        // A lease shorter than the lease the core counts (granted by an earlier run of this agent with
        // a shorter leaseMs, found again after a restart): its key may go before that validity ends.
        // Revoked, the key goes with it, and is taken again below on a lease of the full length.
        const gone = await this.#port.revokeLease(known.holder.lease);
        if (!gone.ok) return refuse(`lease ${known.holder.lease} of ${r.ttlS} s is shorter than the lease of ${this.#o.leaseMs} ms, and etcd did not take its revoke: ${gone.why}`, r.view);
      }
      // A keepalive that failed says nothing of the key: look (a lease that ran out took its key along).
      const seen = r.view === null || r.renewed ? await this.#port.read() : { ok: true as const, view: r.view };
      if (!seen.ok) return refuse(r.renewed ? seen.why : r.why, null);
      view = seen.view;
      if (view.leader !== null) return refuse(r.renewed ? `the leader key is still on lease ${known.holder.lease}` : r.why, view);
    }
    // No key of ours. Only when there is no leader key at all and the term record names us for this
    // term (our lease ran out while etcd was out of reach, or the term was handed to us) do we take it
    // again in the same term, on a lease granted now.
    this.#held = null;
    const record = view.term?.value;
    if (view.leader !== null || record?.term !== term || record.primary !== this.#o.self) {
      const why = view.leader !== null
        ? `the leader key names ${view.leader.value.node} for term ${view.leader.value.term}`
        : `the term record is ${record === undefined ? 'missing' : `term ${record.term} for ${record.primary}`}`;
      return refuse(why, view);
    }
    const fresh = await this.#holderOnFreshLease(term, record);
    if ('why' in fresh) return refuse(fresh.why, view);
    const took = await this.#port.takeLeaderKey(fresh.holder);
    if (!took.ok) {
      await this.#port.revokeLease(fresh.holder.lease);
      return refuse(took.why, took.view ?? view);
    }
    this.#held = { term, lease: fresh.holder.lease, grantors: fresh.holder.grantors ?? null };
    const after = await this.#port.read();
    return this.#leaseReply(seq, true, 'took the leader key again', after.ok ? after.view : view, term);
  }

  async #vote(term: number): Promise<VoteReply> {
    if (term > 1 && (this.#o.nodes?.length ?? 2) > 2) return this.#withdrawCheck(term);
    // Two round trips, not four: the read and the fresh lease's grant go out together (both after the
    // core's decision to campaign, which this message is, so the lease still starts after it), and a
    // won txn is its own answer, with no read after it. A lease the campaign does not use is revoked
    // without waiting (it ends at its TTL anyway): a refusal's reply is not held up by it.
    const [seen, grant] = await Promise.all([this.#port.read(), this.#port.grantLease(this.#o.leaseMs)]);
    const unused = (): void => {
      if (grant.ok) void this.#port.revokeLease(grant.lease);
    };
    if (!seen.ok) {
      unused();
      return this.#voteReply(false, seen.why, null, term);
    }
    const view = seen.view;
    const answered = await this.#notNextTerm(view, term, unused);
    if (answered !== null) return answered;
    if (!grant.ok) return this.#voteReply(false, grant.why, view, term);
    const sync = this.#o.replication === 'sync' && term > 1 ? view.sync : 'async';
    const grantors = this.#grantors(this.#o.self);
    const won = await this.#port.campaign({ node: this.#o.self, after: view.term, lease: grant.lease, sync, grantors });
    if (!won.ok) {
      unused();
      return this.#voteReply(false, won.why, won.view ?? view, term);
    }
    this.#held = { term, lease: grant.lease, grantors };
    // The txn wrote the term record {term, self}: what a read after it would show.
    const reply: VoteReply = { ...this.#envelope(term), kind: 'vote-reply', granted: true, reason: `won term ${term}`, primaryOfTerm: this.#o.self };
    return withGrantors(reply, grantors);
  }

  /**
   * A vote request without a final position among three or more nodes (term > 1) creates no term:
   * only an election decides, on the final positions it compares. The core sends it to ask again for
   * a term it may have won (its answer was lost), and as a standby's question before it withdraws
   * (review-17 F9): withdrawing stops its WAL receiver and its grants, which only an election can make
   * worth it, and none can happen while etcd cannot be reached or the primary's leader key stands.
   * One read answers it, refused, with `leaderKeyGone`: true when no leader key stands and the term
   * record is at `term − 1`, false when a key stands; without it when etcd did not read.
   */
  async #withdrawCheck(term: number): Promise<VoteReply> {
    const seen = await this.#port.read();
    if (!seen.ok) return this.#voteReply(false, seen.why, null, term);
    const view = seen.view;
    const answered = await this.#notNextTerm(view, term, () => undefined);
    if (answered !== null) return answered;
    const key = view.leader?.value;
    const reply = this.#voteReply(
      false,
      key === undefined
        ? `no leader key in term ${term - 1}: a withdrawn standby may be elected (a vote needs the candidate's final position)`
        : `the leader key names ${key.node} for term ${key.term}: no election while it stands`,
      view, term,
    );
    return { ...reply, leaderKeyGone: key === undefined };
  }

  /**
   * The answer when `term` is not the next term etcd can make: asked again for a term we won (the
   * answer was lost), it is ours if our key lives or can be taken; any other term record refuses.
   * Null when the record is at `term − 1` (term 1: none yet), so a campaign may go on.
   */
  async #notNextTerm(view: ClusterView, term: number, unused: () => void): Promise<VoteReply | null> {
    const record = view.term?.value ?? null;
    if (record !== null && record.term === term && record.primary === this.#o.self) {
      unused();
      const lease = await this.#lease(term, 0);
      return this.#voteReply(lease.granted, lease.granted ? `won term ${term}` : lease.reason, view, term);
    }
    if ((record?.term ?? 0) !== term - 1) {
      unused();
      return this.#voteReply(false, `the term record is at ${record?.term ?? 0}`, view, term);
    }
    return null;
  }

  /**
   * The vote of a withdrawn standby, nodes ≥ 3 (docs/design.md, "More than one standby", Candidate
   * choice): publish its final position (once; a re-ask writes nothing, or its new revision would
   * fail the campaigns of the others), read every position with the term and sync records, and
   * campaign only when electionDecision says so, in a txn that compares every eligible node's
   * position key as read. When the decision waits for positions not yet published (or a campaign
   * failed on a position published after the read), and `answerBy` leaves the time, it reads again
   * after a short pause and decides anew on that read: the others withdraw within moments of each
   * other, and a refusal costs the core a heartbeat. Otherwise denied with the decision's reason;
   * the core asks again every heartbeat while withdrawn.
   */
  async #withdrawnVote(msg: VoteRequest, w: WithdrawnPosition, answerBy: number | null): Promise<VoteReply> {
    const term = msg.term;
    const nodes = this.#o.nodes;
    if (nodes === undefined || term < 2) return this.#voteReply(false, 'no election among N nodes without the node list', null, term);
    const startedAt = this.#now();
    // A member that may not win (its own checks found a blocker) still publishes: its final position
    // counts toward the n − k + 1 a winner needs, and nobody yields to it. Absent: eligible.
    const eligible = (w as { readonly eligible?: boolean }).eligible !== false;
    const asked: PositionRecord = { term: term - 1, timeline: w.timeline, flushLsn: w.flushLsn, eligible };
    const mine = await this.#positionToPublish(asked);
    const published = await this.#publish(mine);
    if (published !== null) return this.#voteReply(false, published, null, term);
    const readAt = this.#now();
    const [first, grant] = await Promise.all([this.#port.read(), this.#port.grantLease(this.#o.leaseMs)]);
    // What one more read and a campaign txn cost, as this round trip showed: kept free of any wait.
    const reserveMs = 3 * Math.max(0, this.#now() - readAt);
    const unused = (): void => {
      if (grant.ok) void this.#port.revokeLease(grant.lease);
    };
    let seen = first;
    if (seen.ok && !samePosition(seen.view.positions.find((p) => p.node === this.#o.self)?.value, mine)) {
      // Our key is not what we published (deleted, or this bridge is new after a restart): again.
      this.#published = null;
      const again = await this.#publish(mine);
      seen = again === null ? await this.#port.read() : { ok: false, why: again };
    }
    const wait = answerBy === null ? null : new PositionWait(startedAt, answerBy, reserveMs);
    for (;;) {
      if (!seen.ok) {
        unused();
        return this.#voteReply(false, seen.why, null, term);
      }
      const view = seen.view;
      const answered = await this.#notNextTerm(view, term, unused);
      if (answered !== null) return answered;
      const decided = this.#decide(term, view, nodes, w);
      if ('refused' in decided) {
        unused();
        return this.#voteReply(false, decided.refused, view, term);
      }
      const { decision, record } = decided;
      if (decision.campaign) {
        if (!grant.ok) return this.#voteReply(false, grant.why, view, term);
        // Every position the decision read or could have read, the failed primary's aside: the nodes
        // of this config that may be promoted, the term record's grantors and the sync record's
        // members (a config rolled out halfway may name fewer than the record relies on: review-17b
        // G3). A position published after this read fails the txn.
        const compared = new Set([
          ...nodes.filter((n) => !n.noFailover).map((n) => n.id),
          ...(record.grantors ?? []),
          ...(view.sync?.value.members ?? []),
        ]);
        compared.delete(record.primary);
        const positions: PositionSeen[] = [...compared].sort()
          .map((node) => ({ node, modRevision: view.positions.find((p) => p.node === node)?.modRevision ?? null }));
        const grantors = this.#grantors(this.#o.self);
        const sync = this.#o.replication === 'sync' ? view.sync : 'async';
        const won = await this.#port.campaign({
          node: this.#o.self, after: view.term, lease: grant.lease, sync, grantors, positions,
        });
        if (won.ok) {
          this.#held = { term, lease: grant.lease, grantors };
          this.#published = null;
          const reply: VoteReply = {
            ...this.#envelope(term), kind: 'vote-reply', granted: true, reason: `won term ${term}: ${decision.reason}`,
            primaryOfTerm: this.#o.self,
          };
          return withGrantors(reply, grantors);
        }
        // Refused on its compares (a position published after the read, say): decide again on a
        // new read while time is left. No answer at all: the txn may have landed; the core asks again.
        if (won.view === null || !(await this.#pauseFor(wait))) {
          unused();
          return this.#voteReply(false, won.why, won.view ?? view, term);
        }
      } else if (!decision.wait || !(await this.#pauseFor(wait))) {
        unused();
        return this.#voteReply(false, decision.reason, view, term);
      }
      seen = await this.#port.read();
    }
  }

  /**
   * The position a withdrawn vote publishes. A restarted agent no longer knows when its standby last
   * streamed, so it asks with eligible false; the position its earlier run published in this
   * election (the same term, timeline and final LSN: the same withdrawal, its receiver stopped ever
   * since) says what that run knew, and is kept rather than overwritten. Read only then: an eligible
   * ask publishes first, as before.
   */
  async #positionToPublish(mine: PositionRecord): Promise<PositionRecord> {
    if (mine.eligible || this.#published !== null) return mine;
    const seen = await this.#port.read();
    const ours = seen.ok ? seen.view.positions.find((p) => p.node === this.#o.self)?.value : undefined;
    if (ours === undefined || !ours.eligible || !samePosition(ours, { ...mine, eligible: true })) return mine;
    this.#published = positionText(ours);
    return ours;
  }

  /** One pause of a withdrawn vote's wait; false (at once) when there is none or no time is left. */
  async #pauseFor(wait: PositionWait | null): Promise<boolean> {
    return wait === null ? false : wait.pause(this.#port, () => this.#now());
  }

  /**
   * electionDecision on one read, with the pass-over of those ranked ahead that had the time to win;
   * or a refusal that no wait can change (a bad value, not a grantor of the term).
   */
  #decide(
    term: number, view: ClusterView, nodes: readonly NodeTraits[], w: WithdrawnPosition,
  ): { readonly decision: ElectionDecision; readonly record: TermRecord } | { readonly refused: string } {
    const record = view.term?.value;
    if (record === undefined) return { refused: 'the term record is at 0' };
    const bad = view.bad[0];
    if (bad !== undefined) return { refused: `${bad.key} holds a value pgvip did not write (${bad.problem}): an operator must look` };
    // Only the term's grantors can win its successor (the campaign txn refuses others): a node added
    // to the config since, which takes effect at the next term, is neither ranked nor waited for.
    const termGrantors = record.grantors;
    if (termGrantors !== undefined && !termGrantors.includes(this.#o.self)) {
      const why = `${this.#o.self} is not a grantor of term ${record.term} (${termGrantors.join(', ') || 'none'})`;
      return { refused: `${why}: a change of nodes takes effect at the next term` };
    }
    const ranked = termGrantors === undefined
      ? nodes
      : nodes.filter((n) => n.id === record.primary || termGrantors.includes(n.id));
    const candidates: CandidatePosition[] = view.positions
      .filter((p) => p.value.term === term - 1)
      .map((p) => ({
        node: p.node, timeline: p.value.timeline, flushLsn: p.value.flushLsn,
        streamedRecently: p.value.eligible, primaryLsn: null,
      }));
    const rules: RankingRules = {
      mode: this.#o.replication,
      // The lag bound was each standby's own check before it withdrew (eligible); not known here.
      lagBytesMax: 0n,
      timeline: Math.max(...candidates.map((c) => c.timeline)),
      record: view.sync === null ? NO_CLAIM : { members: view.sync.value.members, k: view.sync.value.k },
      primaryOfTerm: record.primary,
    };
    let decision = electionDecision(this.#o.self, ranked, candidates, rules, w.windowOpen);
    const passedOver = this.#passedOver(term, view.positions, ranked, candidates, rules);
    if (!decision.campaign && passedOver.length > 0) {
      // Ranking is a preference; promotionSafety, which still counts their final positions, is the
      // rule. Those ranked ahead that had the time to win and did not are no longer waited for.
      const without = candidates.map((c) => (passedOver.includes(c.node) ? { ...c, streamedRecently: false } : c));
      const again = electionDecision(this.#o.self, ranked, without, rules, w.windowOpen);
      const who = `${passedOver.join(', ')} ranked first but did not win`;
      decision = again.campaign ? { campaign: true, reason: `${who}: ${again.reason}` } : { ...again, reason: `${who}; ${again.reason}` };
    }
    return { decision, record };
  }

  /**
   * The nodes ranked ahead of this one whose published position has stood unchanged for
   * passOverAfterMs without their winning (a win ends the election: the term moves).
   */
  #passedOver(
    term: number, positions: ClusterView['positions'], ranked: readonly NodeTraits[],
    candidates: readonly CandidatePosition[], rules: RankingRules,
  ): string[] {
    if (this.#seen.term !== term) this.#seen = { term, at: new Map() };
    const now = this.#now();
    const at = this.#seen.at;
    for (const p of positions) {
      const was = at.get(p.node);
      if (was?.modRevision !== p.modRevision) at.set(p.node, { modRevision: p.modRevision, sinceMs: now });
    }
    const ahead: string[] = [];
    for (const r of rankCandidates(ranked, candidates, rules)) {
      if (!r.eligible || r.node === this.#o.self) break;
      ahead.push(r.node);
    }
    const bound = this.#o.passOverAfterMs ?? this.#o.leaseMs;
    return ahead.filter((node) => now - (at.get(node)?.sinceMs ?? now) >= bound);
  }

  #now(): number {
    return (this.#o.clock ?? this.#port.now ?? (() => performance.now()))();
  }

  /** Writes our final position unless this bridge already did; why it failed, or null. */
  async #publish(position: PositionRecord): Promise<string | null> {
    const text = positionText(position);
    if (this.#published === text) return null;
    const r = await this.#port.publishPosition(this.#o.self, position);
    if (!r.ok) return `final position not published: ${r.why}`;
    this.#published = text;
    return null;
  }

  /**
   * A withdrawn standby takes back its position before it resumes its WAL receiver: deleted only
   * while the term record is the one of `term` as read, so either this comes before a campaign
   * (which then fails on the changed key) or the term moved, and the core learns it from the Ack.
   */
  async #clearPosition(term: number): Promise<PeerReply> {
    const ack = (accepted: boolean, reason: string, atTerm: number): PeerReply => ({ ...this.#envelope(atTerm), kind: 'ack', accepted, reason });
    const seen = await this.#port.read();
    if (!seen.ok) return ack(false, seen.why, term);
    const record = seen.view.term;
    const at = record?.value.term ?? 0;
    if (at !== term) return ack(false, `the term record is at ${at}, not ${term}`, Math.max(at, term));
    const r = await this.#port.clearPosition(this.#o.self, record);
    if (!r.ok) return ack(false, r.why, r.view?.term?.value.term ?? term);
    this.#published = null;
    return ack(true, `position/${this.#o.self} deleted in term ${term}`, term);
  }

  async #release(term: number): Promise<PeerReply> {
    // Our key for the term, also one found on etcd (a restarted agent that releases before it renewed):
    // left alone, it would keep the standby's campaign waiting for its TTL, where a release is meant
    // to let it win at once (the fast path).
    const known = await this.#knownHolder(term);
    const ok = 'why' in known ? false : known.holder === null || (await this.#port.revokeLease(known.holder.lease)).ok;
    if (ok) this.#held = null;
    return { ...this.#envelope(term), kind: 'ack', accepted: ok, reason: ok ? 'released' : 'etcd did not take the release' };
  }

  async #sync(term: number, claim: Claim | NodeId | null): Promise<PeerReply | null> {
    const known = await this.#knownHolder(term);
    const isClaim = typeof claim === 'object' && claim !== null;
    // Both forms write only over the record as read now: a txn of this primary whose answer was lost,
    // and which etcd applies late, then fails once this one (or any) has written after it. Two nodes
    // too: a lost restore landing after the degrade that followed it would claim a standby that lacks
    // every write acknowledged since (sim seed 6199).
    const seen = 'holder' in known && known.holder !== null ? await this.#port.read() : null;
    const after = seen?.ok === true ? { modRevision: seen.view.sync?.modRevision ?? null } : undefined;
    const r = 'why' in known ? { ok: false as const, why: known.why, view: null }
      : known.holder === null ? { ok: false as const, why: `no leader key of ${this.#o.self} for term ${term}`, view: null }
        : seen !== null && !seen.ok ? { ok: false as const, why: seen.why, view: null }
          : await this.#port.setSync(known.holder, claim, after);
    if (!r.ok && r.view === null && 'holder' in known && known.holder !== null && isClaim) {
      // No answer: etcd may have committed the claim, and a primary that planned from the old record
      // could lower its setting below what etcd holds (R1). Read back: the claim there is granted;
      // otherwise the outcome is unknown, and no answer is what the core gets (it asks again).
      const seen = await this.#port.read();
      const held = seen.ok ? seen.view.sync?.value : undefined;
      if (held === undefined || !sameRecord(held, claim, term)) return null;
      return { ...this.#envelope(term), kind: 'sync-update-reply', granted: true, reason: `sync record written (read back: ${r.why})` };
    }
    return { ...this.#envelope(term), kind: 'sync-update-reply', granted: r.ok, reason: r.ok ? 'sync record written' : r.why };
  }

  /**
   * Our holder for `term`: the lease we know, or (after a restart) the one our leader key is on;
   * holder null when no key of ours exists, with the view that shows it.
   */
  async #knownHolder(term: number): Promise<KnownHolder> {
    const held = this.#held;
    if (held !== null && held.term === term) {
      return { holder: { node: this.#o.self, term, lease: held.lease, grantors: held.grantors } };
    }
    const seen = await this.#port.read();
    if (!seen.ok) return { why: seen.why };
    const key = seen.view.leader;
    const grantors = seen.view.term?.value.grantors ?? null;
    const holder: Holder | null = key === null ? null : { node: this.#o.self, term, lease: key.lease, grantors };
    if (holder !== null && holderProblem(seen.view, holder) === null) {
      this.#held = { term, lease: holder.lease, grantors };
      return { holder };
    }
    return { holder: null, view: seen.view };
  }

  async #holderOnFreshLease(term: number, record: TermRecord): Promise<{ holder: Holder } | { why: string }> {
    const g = await this.#port.grantLease(this.#o.leaseMs);
    if (!g.ok) return { why: g.why };
    return { holder: { node: this.#o.self, term, lease: g.lease, grantors: record.grantors ?? null } };
  }

  /**
   * The grantors of a term whose primary is `primary`. Null with two nodes (or no node list): the
   * two-node record forms, which an agent of an earlier release reads, and whose grantor is "the
   * other node" all the same.
   */
  #grantors(primary: NodeId): readonly NodeId[] | null {
    const nodes = this.#o.nodes;
    return nodes === undefined || nodes.length <= 2 ? null : grantorsOf(nodes, primary);
  }

  #envelope(term: number) {
    return { v: PROTOCOL_VERSION, cluster: this.#o.cluster, term, from: this.#o.quorumId };
  }

  #leaseReply(seq: number, granted: boolean, reason: string, view: ClusterView | null, askedTerm: number): LeaseReply {
    const reply: LeaseReply = {
      ...this.#envelope(view?.term?.value.term ?? askedTerm),
      kind: 'lease-reply',
      seq,
      granted,
      reason,
      primaryOfTerm: view?.term?.value.primary ?? null,
      maintenance: view?.maintenance !== null && view?.maintenance !== undefined,
    };
    return withGrantors(reply, view?.term?.value.grantors);
  }

  #voteReply(granted: boolean, reason: string, view: ClusterView | null, askedTerm: number): VoteReply {
    const term = granted ? askedTerm : view?.term?.value.term ?? 0;
    const primaryOfTerm = view?.term?.value.primary ?? null;
    const reply: VoteReply = { ...this.#envelope(term), kind: 'vote-reply', granted, reason, primaryOfTerm };
    return withGrantors(reply, view?.term?.value.term === term ? view.term.value.grantors : undefined);
  }
}

/**
 * A reply of the quorum with `grantorsOfTerm`: the grantors etcd's term record names for the reply's
 * term (review-17 F5: the primary counts the grants of the term's grantors, not only its config's).
 * Left out for a record without them (two nodes: "the other node"), so two-node replies are as before.
 */
function withGrantors<T extends LeaseReply | VoteReply>(reply: T, grantors: readonly NodeId[] | null | undefined): T {
  if (grantors === null || grantors === undefined) return reply;
  return Object.assign({}, reply, { grantorsOfTerm: [...grantors] });
}

function positionText(p: PositionRecord): string {
  return `${p.term}/${p.timeline}/${p.flushLsn}/${p.eligible}`;
}

function samePosition(a: PositionRecord | undefined, b: PositionRecord): boolean {
  return a !== undefined && positionText(a) === positionText(b);
}

/** The sync record etcd holds is the claim asked for in `term`. */
function sameRecord(
  held: { readonly members: readonly string[]; readonly k: number; readonly term: number }, claim: Claim, term: number,
): boolean {
  const want = claim.k === 0 ? [] : [...new Set(claim.members)].sort();
  return held.term === term && held.k === claim.k && held.members.length === want.length
    && held.members.every((m, i) => m === want[i]);
}

/**
 * The time a withdrawn vote may spend waiting for positions: pauses of an eighth of its budget,
 * while one more read and a campaign (`reserveMs`) still fit before `answerBy`; at most as many as
 * the budget holds, whatever the clock says (a clock that stands still ends them too).
 */
class PositionWait {
  readonly #answerBy: number;
  readonly #reserveMs: number;
  readonly #pauseMs: number;
  #left: number;

  constructor(startedAt: number, answerBy: number, reserveMs: number) {
    const budget = Math.max(0, answerBy - startedAt);
    this.#answerBy = answerBy;
    this.#reserveMs = reserveMs;
    this.#pauseMs = Math.max(5, Math.min(50, budget / 8));
    this.#left = Math.floor(budget / this.#pauseMs);
  }

  /** Pauses once and returns true, or returns false at once when no pause fits any more. */
  async pause(port: Pick<EtcdQuorumPort, 'pause'>, now: () => number): Promise<boolean> {
    if (port.pause === undefined || this.#left <= 0) return false;
    if (now() + this.#pauseMs + this.#reserveMs > this.#answerBy) return false;
    this.#left -= 1;
    await port.pause(this.#pauseMs);
    return true;
  }
}
