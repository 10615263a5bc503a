// Simulated time: one global real-time clock driving an event queue, each host's local clock
// running at its own rate (within 1 ± ρ, see Schedule.clockRates), and the hosts whose processes
// run on it (a crashed host runs nothing, a paused one runs it all on resume, in order).
import { EventHeap, type Timed } from './heap.js';
import type { ClockRates, Host } from './schedule.js';

interface Ev extends Timed {
  readonly fn: () => void;
}

export class SimClock {
  /** Real (global) simulated time in ms. */
  t = 0;
  #seq = 0;
  readonly #q = new EventHeap<Ev>();

  readonly #rates: Readonly<Record<Host, number>>;
  constructor(rates: ClockRates) {
    this.#rates = { ...rates, 'db-c': rates['db-c'] ?? 1 };
  }

  /** What host h's monotonic clock reads now. */
  local(h: Host): number {
    return this.t * this.#rates[h];
  }
  /** Real delay for a duration measured on host h's clock. */
  realDelay(h: Host, localMs: number): number {
    return localMs / this.#rates[h];
  }
  at(t: number, fn: () => void): void {
    this.#q.push({ at: Math.max(t, this.t), seq: this.#seq++, fn });
  }
  after(ms: number, fn: () => void): void {
    this.at(this.t + ms, fn);
  }
  /**
   * Run events in time order (ties in the order they were scheduled) up to endMs; later events stay
   * queued, so a test may run a model in steps.
   */
  runUntil(endMs: number): void {
    for (;;) {
      const e = this.#q.pop();
      if (e === undefined) break;
      if (e.at > endMs) {
        this.#q.push(e);
        break;
      }
      this.t = e.at;
      e.fn();
    }
    this.t = endMs;
  }
  /**
   * runUntil for runs with async parts (the etcd bridge): after each event that settled a promise
   * (`woken` says so, and resets), the continuations it woke run to the end — one macrotask turn
   * drains every microtask — before the next event, at the same simulated instant.
   */
  async runUntilAsync(endMs: number, woken: () => boolean): Promise<void> {
    for (;;) {
      const e = this.#q.pop();
      if (e === undefined || e.at > endMs) break;
      this.t = e.at;
      e.fn();
      while (woken()) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.t = endMs;
  }
}

export interface HostState {
  crashed: boolean;
  paused: boolean;
  backlog: (() => void)[];
}

/** Whether each host runs at all: crashed (nothing runs), paused (work waits), or up. */
export class Hosts {
  readonly state: Record<Host, HostState> = {
    'db-a': { crashed: false, paused: false, backlog: [] },
    'db-b': { crashed: false, paused: false, backlog: [] },
    'db-c': { crashed: false, paused: false, backlog: [] },
    witness: { crashed: false, paused: false, backlog: [] },
  };

  /** Run fn as a process on host h: dropped if the host is down, deferred while it is paused. */
  run(h: Host, fn: () => void): void {
    const hs = this.state[h];
    if (hs.crashed) return;
    if (hs.paused) hs.backlog.push(fn);
    else fn();
  }
  crashed(h: Host): boolean {
    return this.state[h].crashed;
  }
  paused(h: Host): boolean {
    return this.state[h].paused;
  }
}
