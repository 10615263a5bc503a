// Replay memory, without clocks. Each sender process picks a random boot id when it starts and
// numbers its requests 1, 2, 3… within that boot. Within one verifier epoch (see verifier.ts), the
// verifier remembers per (cluster, sender) the highest number it accepted from each of the sender's
// recent boots, and refuses any request that is not above it.
//
// Refusing every number at or below the highest — not just the ones already seen — also refuses a
// genuine request that was overtaken by a later one. That is deliberate: the receiver then handles
// each sender process's requests in the order they were sent, so a request held back by the network
// (or by an attacker) can never be applied after its successors. Clients keep one connection per
// peer, so overtaking is rare, and a refused request is no worse than a lost one.
//
// Memory is bounded: `recentBoots` boots per sender keep their highest number; older boots of the
// sender are only remembered as retired (refused outright), up to `retiredBoots` of them. When a
// sender needs more than that, the memory is full: the verifier starts a new epoch instead of
// forgetting anything, since a forgotten boot's requests would look new again.
import type { NodeId } from '../core/messages.js';

export interface ReplayLimits {
  /** Boots per sender whose highest sequence number is kept. A sender normally has one live boot. */
  readonly recentBoots: number;
  /** Boot ids of superseded sender processes, per sender, that stay refused within an epoch. */
  readonly retiredBoots: number;
}

export const defaultReplayLimits: ReplayLimits = { recentBoots: 4, retiredBoots: 64 };

export type ReplayVerdict =
  | { readonly accepted: true }
  | { readonly accepted: false; readonly why: string }
  /** Accepting would need more memory than the limits allow: start a new epoch. */
  | { readonly accepted: false; readonly full: true };

const ACCEPTED: ReplayVerdict = { accepted: true };

/** What one sender's recent processes have sent. */
class SenderHistory {
  /** Boot id → highest accepted sequence number; Map order is least recently used first. */
  readonly #recent = new Map<string, number>();
  readonly #retired = new Set<string>();
  readonly #limits: ReplayLimits;

  constructor(limits: ReplayLimits) {
    this.#limits = limits;
  }

  accept(boot: string, seq: number): ReplayVerdict {
    const highest = this.#recent.get(boot);
    if (highest !== undefined && seq <= highest) {
      return { accepted: false, why: `seq ${seq} is not above ${highest}, the highest already accepted from this process` };
    }
    if (highest === undefined && this.#retired.has(boot)) {
      return { accepted: false, why: `boot ${boot} belongs to a sender process that has since been replaced` };
    }
    const full = this.#recent.size >= this.#limits.recentBoots && this.#retired.size >= this.#limits.retiredBoots;
    if (highest === undefined && full) {
      return { accepted: false, full: true };
    }
    this.#recent.delete(boot);
    this.#recent.set(boot, seq);
    for (const old of this.#recent.keys()) {
      if (this.#recent.size <= this.#limits.recentBoots) break;
      this.#recent.delete(old);
      this.#retired.add(old);
    }
    return ACCEPTED;
  }
}

/** One epoch's replay memory. Feed it only requests whose MAC verified, so forgeries take no space. */
export class ReplayMemory {
  readonly #senders = new Map<string, SenderHistory>();
  readonly #limits: ReplayLimits;

  constructor(limits: Partial<ReplayLimits> = {}) {
    this.#limits = { ...defaultReplayLimits, ...limits };
    if (!(this.#limits.recentBoots >= 1 && this.#limits.retiredBoots >= 0)) {
      throw new RangeError('replay limits: recentBoots must be at least 1 and retiredBoots at least 0');
    }
  }

  /** Records (boot, seq) for the sender if it is new and in order. */
  accept(cluster: string, sender: NodeId, boot: string, seq: number): ReplayVerdict {
    // Names cannot contain '/', so this key is unambiguous.
    const key = `${cluster}/${sender}`;
    let history = this.#senders.get(key);
    if (history === undefined) {
      history = new SenderHistory(this.#limits);
      this.#senders.set(key, history);
    }
    return history.accept(boot, seq);
  }
}
