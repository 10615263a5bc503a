// The EC2 model of the VIP: AssignPrivateIpAddresses is accepted after an API latency, routing
// follows after an asynchronous remap, and the faults EC2 shows (throttling, 5xx, hangs, lost
// responses, stale describes, slow remaps) each last a while.
import type { EffectResult } from '@pgvip/shared/core';
import type { Checker } from './checker.js';
import type { SimClock } from './clock.js';
import type { RngStreams } from './rng.js';
import type { DbNode, Ec2FaultKind } from './schedule.js';

/** Reports an effect's result after delayMs (see Nodes.startEffect). */
export type Finish = (delayMs: number, apply: () => Omit<EffectResult, 'id'>) => void;

export class Ec2 {
  /** Who EC2 assigned the VIP to, and for which term (the newest move accepted). */
  owner: DbNode | null = 'db-a';
  ownerTerm = 1;
  /** Where the VIP routes now (lags `owner` by the remap). */
  routed: DbNode | null = 'db-a';
  readonly #ownerHistory: { t: number; owner: DbNode | null }[] = [{ t: 0, owner: 'db-a' }];
  readonly #faults = new Map<Ec2FaultKind, number>();
  #remapSeq = 0;
  /** Every move EC2 accepted, in order. */
  readonly vipMoves: { t: number; node: DbNode; term: number }[] = [];

  constructor(
    private readonly clock: SimClock,
    /** One stream per node's calls (`ec2 db-a`), one for the remaps. */
    private readonly rngs: RngStreams,
    private readonly check: Checker,
    private readonly log: (who: string, text: string) => void,
    /** The durable term of a node now (I5 allows a move that node already knows is stale to no one). */
    private readonly durableTerm: (n: DbNode) => number,
    bootstrap: boolean,
  ) {
    if (bootstrap) {
      this.owner = null;
      this.ownerTerm = 0;
      this.routed = null;
      this.#ownerHistory.length = 0;
    }
  }

  fault(kind: Ec2FaultKind, durMs: number): void {
    this.#faults.set(kind, Math.max(this.#faults.get(kind) ?? 0, this.clock.t + durMs));
  }
  #faulty(kind: Ec2FaultKind): boolean {
    return (this.#faults.get(kind) ?? 0) > this.clock.t;
  }
  #ownerAt(t: number): DbNode | null {
    let o: DbNode | null = null;
    for (const h of this.#ownerHistory) {
      if (h.t <= t) o = h.owner;
      else break;
    }
    return o;
  }

  /** The move-vip-cloud effect of n for `term`, within the agent's call budget (measured on n's clock). */
  moveVip(n: DbNode, term: number, budgetMs: number, finish: Finish): void {
    const budget = this.clock.realDelay(n, budgetMs);
    const arrive = this.rngs.get(`ec2 ${n}`).int(20, 150);
    if (this.#faulty('hang')) return finish(budget, () => ({ ok: false, detail: 'timed out (hang)' }));
    if (this.#faulty('throttle')) return finish(arrive * 2, () => ({ ok: false, detail: 'RequestLimitExceeded' }));
    if (this.#faulty('5xx')) return finish(arrive * 2, () => ({ ok: false, detail: 'InternalError' }));
    const lost = this.#faulty('lost');
    this.clock.after(arrive, () => {
      this.#accept(n, term);
    });
    const answer = () => (lost ? { ok: false, detail: 'response lost' } : { ok: true, detail: 'assigned' });
    finish(Math.min(budget, arrive * 2), answer);
  }
  #accept(n: DbNode, term: number): void {
    this.check.vipMove(n, term, this.ownerTerm, this.durableTerm(n));
    this.ownerTerm = Math.max(this.ownerTerm, term);
    this.vipMoves.push({ t: this.clock.t, node: n, term });
    if (this.owner === n) return; // already assigned: EC2 treats it as done
    this.owner = n;
    this.#ownerHistory.push({ t: this.clock.t, owner: n });
    const rng = this.rngs.get('ec2 remap');
    const remap = this.#faulty('slow-remap') ? rng.int(3000, 6000) : rng.int(200, 800);
    const seq = ++this.#remapSeq;
    this.log('ec2', `VIP assigned to ${n} (term ${term}); remap in ${remap} ms`);
    this.clock.after(remap, () => {
      if (seq !== this.#remapSeq) return;
      this.routed = n;
      this.log('ec2', `VIP now routes to ${n}`);
    });
  }
  /** The verify-vip effect: where n's describe call sees the VIP (2 s old while describes are stale). */
  verifyVip(n: DbNode, finish: Finish): void {
    finish(this.rngs.get(`ec2 ${n}`).int(30, 150), () => {
      const seen = this.#faulty('stale') ? this.#ownerAt(this.clock.t - 2000) : this.routed;
      return { ok: true, detail: 'described', vipPlacement: seen === n ? 'here' : 'elsewhere' };
    });
  }
}
