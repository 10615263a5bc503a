// The emulator's three clocks on one state, to mimic how EC2 behaves after a change:
//   control plane  — what the API accepted; every validation runs against it, so a second call sees
//                    the first at once (AWS serialises mutations per resource).
//   truth          — what the network actually does (the data plane). A mutation reaches it only
//                    `remapDelayMs` after it was acknowledged, in acceptance order. The lab programs
//                    its router from the truth, so a VIP reaches the new host only once remapped.
//   lagging views  — Describe* answers from the control plane as it was `describeStaleMs` ago
//                    (eventual consistency); IMDS answers from the truth as it was `imdsLagMs` ago
//                    (AWS documents local-ipv4s as the way to confirm a remap, so it trails the remap).
import { EventEmitter } from 'node:events';
import { freezeSnapshot, type Ec2Snapshot } from './model.js';

export interface Timing {
  /** Delay between acknowledging a mutation and its effect on the truth (the data plane). */
  readonly remapDelayMs: number;
  /** For this long after a change, Describe* still serves the state from before it. */
  readonly describeStaleMs: number;
  /** IMDS serves the truth as it was this long ago. */
  readonly imdsLagMs: number;
}

export interface TruthChange {
  /** Increments with every change of the truth; starts at 0 for the initial state. */
  readonly version: number;
  readonly truth: Ec2Snapshot;
  readonly previous: Ec2Snapshot;
  /** The API action whose effect just landed. */
  readonly cause: string;
}

export type Clock = () => number;

interface HistoryEntry {
  readonly atMs: number;
  readonly version: number;
  readonly snapshot: Ec2Snapshot;
}

interface PendingRemap {
  readonly dueAtMs: number;
  readonly snapshot: Ec2Snapshot;
  readonly cause: string;
}

/** How much history to keep beyond the longest configured lag (so lags raised at runtime still work). */
const historySlackMs = 60_000;

/** Returns the entry in effect at `atMs`: the last one recorded at or before it (or the oldest kept). */
function entryAt(history: readonly HistoryEntry[], atMs: number): HistoryEntry {
  let found = history[0]!;
  for (const entry of history) {
    if (entry.atMs > atMs) break;
    found = entry;
  }
  return found;
}

function sameState(a: Ec2Snapshot, b: Ec2Snapshot): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class Ec2Store {
  readonly #clock: Clock;
  readonly #events = new EventEmitter();
  #timing: Timing;
  #controlHistory: HistoryEntry[];
  #truthHistory: HistoryEntry[];
  #pending: PendingRemap[] = [];
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(initial: Ec2Snapshot, timing: Timing, clock: Clock = () => performance.now()) {
    this.#clock = clock;
    this.#timing = { ...timing };
    const first = { atMs: clock(), version: 0, snapshot: freezeSnapshot(initial) };
    // History starts "at the beginning of time" so a lagging view never predates the initial state.
    this.#controlHistory = [{ ...first, atMs: -Infinity }];
    this.#truthHistory = [{ ...first, atMs: -Infinity }];
    this.#events.setMaxListeners(0);
  }

  get timing(): Timing {
    return { ...this.#timing };
  }

  /** Changes the delays at runtime; already scheduled remaps keep their due time. */
  setTiming(update: Partial<Timing>): void {
    const defined = Object.entries(update).filter(([, value]) => value !== undefined);
    this.#timing = { ...this.#timing, ...Object.fromEntries(defined) };
  }

  /** The state the API has accepted (what validations see). */
  get control(): Ec2Snapshot {
    return this.#controlHistory.at(-1)!.snapshot;
  }

  /** The data plane as it is now. */
  get truth(): Ec2Snapshot {
    return this.#truthHistory.at(-1)!.snapshot;
  }

  get truthVersion(): number {
    return this.#truthHistory.at(-1)!.version;
  }

  /** What Describe* calls return now: the control plane as of `describeStaleMs` ago. */
  describeView(): Ec2Snapshot {
    return entryAt(this.#controlHistory, this.#clock() - this.#timing.describeStaleMs).snapshot;
  }

  /** What IMDS returns now: the truth as of `imdsLagMs` ago. */
  imdsView(): Ec2Snapshot {
    return entryAt(this.#truthHistory, this.#clock() - this.#timing.imdsLagMs).snapshot;
  }

  /**
   * Records an accepted mutation. It is visible to validations at once and reaches the truth after
   * `remapDelayMs`; remaps land in acceptance order even if the delay was lowered in between.
   * A mutation that changes nothing (e.g. assigning an address the ENI already has) is not a change.
   */
  commit(next: Ec2Snapshot, cause: string): void {
    if (this.#closed) throw new Error('the EC2 emulator store is closed');
    const now = this.#clock();
    if (sameState(next, this.control)) return;
    const snapshot = freezeSnapshot(next);
    const last = this.#controlHistory.at(-1)!;
    this.#controlHistory.push({ atMs: now, version: last.version + 1, snapshot });
    const lastDue = this.#pending.at(-1)?.dueAtMs ?? -Infinity;
    this.#pending.push({ dueAtMs: Math.max(now + this.#timing.remapDelayMs, lastDue), snapshot, cause });
    if (this.#timing.remapDelayMs <= 0 && lastDue === -Infinity) this.#applyDueRemaps();
    else this.#armTimer();
    this.#prune(now);
  }

  /** Calls `listener` whenever the truth changes; returns a function that unsubscribes. */
  onTruthChange(listener: (change: TruthChange) => void): () => void {
    this.#events.on('truth', listener);
    return () => this.#events.off('truth', listener);
  }

  /**
   * Resolves with the truth once its version exceeds `afterVersion`, or with the current truth after
   * `timeoutMs` (a long-poll for processes that watch the emulator from outside, like the lab).
   */
  waitForTruthChange(afterVersion: number, timeoutMs: number): Promise<{ version: number; truth: Ec2Snapshot }> {
    const current = () => ({ version: this.truthVersion, truth: this.truth });
    if (this.truthVersion > afterVersion || this.#closed) return Promise.resolve(current());
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        unsubscribe();
        this.#events.off('close', finish);
        resolve(current());
      };
      const timer = setTimeout(finish, timeoutMs);
      const unsubscribe = this.onTruthChange((change) => {
        if (change.version > afterVersion) finish();
      });
      this.#events.once('close', finish);
    });
  }

  /** Mutations acknowledged but not yet in the truth. */
  get pendingRemaps(): number {
    return this.#pending.length;
  }

  /** Stops the remap timer (pending remaps are dropped) and releases long-polls. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#pending = [];
    this.#events.emit('close');
  }

  #armTimer(): void {
    clearTimeout(this.#timer);
    const next = this.#pending[0];
    if (!next) return;
    this.#timer = setTimeout(() => this.#applyDueRemaps(), Math.max(0, next.dueAtMs - this.#clock()));
  }

  #applyDueRemaps(): void {
    const now = this.#clock();
    while (this.#pending.length > 0 && this.#pending[0]!.dueAtMs <= now) {
      const remap = this.#pending.shift()!;
      const previous = this.truth;
      const version = this.truthVersion + 1;
      this.#truthHistory.push({ atMs: now, version, snapshot: remap.snapshot });
      this.#events.emit('truth', { version, truth: remap.snapshot, previous, cause: remap.cause } satisfies TruthChange);
    }
    this.#prune(now);
    this.#armTimer();
  }

  #prune(now: number): void {
    const keepAfter = now - Math.max(this.#timing.describeStaleMs, this.#timing.imdsLagMs) - historySlackMs;
    for (const history of [this.#controlHistory, this.#truthHistory]) {
      // Keep the newest entry at or before the cutoff: it is the state in effect at the cutoff.
      while (history.length > 1 && history[1]!.atMs <= keepAfter) history.shift();
    }
  }
}
