// Replay protection without clocks. Each sender process picks a random boot id when it starts and
// numbers its requests 1, 2, 3… within that boot. The verifier remembers, per (cluster, sender), which
// sequence numbers it has accepted for the sender's most recent boots, and refuses any it has seen.
//
// Sequence numbers are tracked with a sliding window (as IPsec and WireGuard do) rather than only the
// highest one: a sender with several connections open may have request 8 overtake request 7, and
// request 7 is still genuine. Each number is accepted at most once either way; numbers that fall
// more than WINDOW_SIZE behind the highest are refused.
//
// Memory is bounded: `recentBoots` windows per sender, plus up to `retiredBoots` boot ids of older
// processes that are refused outright. A boot id older than both — more than recentBoots +
// retiredBoots restarts of one sender during this verifier's lifetime — is forgotten and would look
// like a new process again (docs/security.md discusses why that and a verifier restart are harmless).
import { PgvipError } from '../errors.js';

export interface ReplayLimits {
  /** Boots per sender whose sequence windows are kept. A sender normally has one live boot. */
  readonly recentBoots: number;
  /** Boot ids of superseded processes per sender that stay refused. */
  readonly retiredBoots: number;
}

export const defaultReplayLimits: ReplayLimits = { recentBoots: 4, retiredBoots: 1024 };

export const WINDOW_SIZE = 64;
const WINDOW_MASK = (1n << BigInt(WINDOW_SIZE)) - 1n;

/** Sequence numbers seen in one boot: the highest, and a bitmap of the WINDOW_SIZE below it. */
class SequenceWindow {
  #highest: number;
  /** Bit i set: sequence number (highest − i) has been accepted. */
  #seen = 1n;

  constructor(firstSeq: number) {
    this.#highest = firstSeq;
  }

  /** Records `seq`, or returns why it must be refused. */
  accept(seq: number): string | null {
    if (seq > this.#highest) {
      const advance = seq - this.#highest;
      this.#seen = advance >= WINDOW_SIZE ? 1n : ((this.#seen << BigInt(advance)) | 1n) & WINDOW_MASK;
      this.#highest = seq;
      return null;
    }
    const behind = this.#highest - seq;
    if (behind >= WINDOW_SIZE) return `seq ${seq} is ${behind} behind the highest seen (${this.#highest}), beyond the replay window`;
    const bit = 1n << BigInt(behind);
    if ((this.#seen & bit) !== 0n) return `seq ${seq} was already accepted (highest seen ${this.#highest})`;
    this.#seen |= bit;
    return null;
  }
}

/** What one sender's recent processes have sent. */
class SenderHistory {
  /** Map order is least recently used first. */
  readonly #recent = new Map<string, SequenceWindow>();
  /** Set order is oldest first. */
  readonly #retired = new Set<string>();
  readonly #limits: ReplayLimits;

  constructor(limits: ReplayLimits) {
    this.#limits = limits;
  }

  accept(boot: string, seq: number): string | null {
    const window = this.#recent.get(boot);
    if (window !== undefined) {
      const problem = window.accept(seq);
      if (problem === null) this.#touch(boot, window);
      return problem;
    }
    if (this.#retired.has(boot)) return `boot ${boot} belongs to a sender process that has since been replaced`;
    this.#touch(boot, new SequenceWindow(seq));
    this.#evictBeyondLimits();
    return null;
  }

  #touch(boot: string, window: SequenceWindow): void {
    this.#recent.delete(boot);
    this.#recent.set(boot, window);
  }

  #evictBeyondLimits(): void {
    for (const boot of this.#recent.keys()) {
      if (this.#recent.size <= this.#limits.recentBoots) break;
      this.#recent.delete(boot);
      this.#retired.add(boot);
    }
    for (const boot of this.#retired) {
      if (this.#retired.size <= this.#limits.retiredBoots) break;
      this.#retired.delete(boot);
    }
  }
}

/** A verifier's replay memory. Call `accept` only after the MAC has verified, so forgeries take no space. */
export class ReplayGuard {
  readonly #senders = new Map<string, SenderHistory>();
  readonly #limits: ReplayLimits;

  constructor(limits: Partial<ReplayLimits> = {}) {
    this.#limits = { ...defaultReplayLimits, ...limits };
    if (!(this.#limits.recentBoots >= 1 && this.#limits.retiredBoots >= 0)) {
      throw new RangeError('replay limits: recentBoots must be at least 1 and retiredBoots at least 0');
    }
  }

  /** Records (boot, seq) for the sender, or throws PGVIP_AUTH_REPLAY if it was seen before. */
  accept(cluster: string, sender: string, boot: string, seq: number): void {
    // Names cannot contain '/', so this key is unambiguous.
    const key = `${cluster}/${sender}`;
    let history = this.#senders.get(key);
    if (history === undefined) {
      history = new SenderHistory(this.#limits);
      this.#senders.set(key, history);
    }
    const problem = history.accept(boot, seq);
    if (problem !== null) throw new PgvipError('PGVIP_AUTH_REPLAY', `request from ${sender} in cluster ${cluster}: ${problem}`);
  }
}
