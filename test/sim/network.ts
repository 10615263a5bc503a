// The network model: one-way links between hosts (and the client), each of which can be blocked
// (partitions and isolation count up and down, so overlapping faults compose), lossy or slowed.
// Every packet gets a random delay from the schedule's range, so reordering follows from jitter;
// a share of packets is duplicated. Each link direction draws from its own random streams (one for
// requests, one for replies, one for replication rounds), so a packet's fate depends on the
// packets before it on its own stream only, not on what else the sender did in the same step.
import type { Hosts, SimClock } from './clock.js';
import type { Rng, RngStreams } from './rng.js';
import { hostsOf, type Host, type Schedule } from './schedule.js';

type End = Host | 'client';
/** What a packet carries: each kind has its own random stream per link direction. */
type Channel = 'request' | 'reply' | 'replication';

export class Network {
  readonly #blocked = new Map<string, number>();
  readonly #loss = new Map<string, number>();
  readonly #extraDelay = new Map<string, number>();

  constructor(
    private readonly clock: SimClock,
    private readonly hosts: Hosts,
    private readonly rngs: RngStreams,
    private readonly sched: Schedule,
    /** The requester's timeout of one request, on its own clock. */
    private readonly requestTimeoutMs: number,
  ) {}

  #key(a: string, b: string): string {
    return `${a}>${b}`;
  }
  linkUp(a: End, b: End): boolean {
    return !((this.#blocked.get(this.#key(a, b)) ?? 0) > 0);
  }
  block(a: End, b: End, delta: number): void {
    const k = this.#key(a, b);
    this.#blocked.set(k, (this.#blocked.get(k) ?? 0) + delta);
  }
  /** Whether one packet (or one replication round) a→b is lost to a loss fault; draws only if lossy. */
  lost(a: Host, b: Host): boolean {
    return this.#rng(a, b, 'replication').chance(this.#loss.get(this.#key(a, b)) ?? 0);
  }
  /** The link direction's streams, looked up by the hosts' interned names (no key built per packet). */
  readonly #streams = new Map<Host, Map<Host, Map<Channel, Rng>>>();
  #rng(a: Host, b: Host, channel: Channel): Rng {
    let fromA = this.#streams.get(a);
    if (fromA === undefined) this.#streams.set(a, (fromA = new Map()));
    let link = fromA.get(b);
    if (link === undefined) fromA.set(b, (link = new Map()));
    let rng = link.get(channel);
    if (rng === undefined) link.set(channel, (rng = this.rngs.get(`net ${a}>${b} ${channel}`)));
    return rng;
  }
  /** Deliver a packet a→b to a process on b, unless the link is blocked or the packet is lost. */
  transmit(a: Host, b: Host, channel: Channel, fn: () => void): void {
    if (!this.linkUp(a, b)) return;
    const k = this.#key(a, b);
    const rng = this.#rng(a, b, channel);
    if (rng.chance(this.#loss.get(k) ?? 0)) return;
    const [lo, hi] = this.sched.delayMs;
    const d = rng.int(lo, hi) + (this.#extraDelay.get(k) ?? 0);
    this.clock.after(d, () => this.hosts.run(b, fn));
    if (rng.chance(this.sched.duplicateP)) this.clock.after(d + rng.int(0, 20), () => this.hosts.run(b, fn));
  }
  /**
   * A request/response exchange with a timeout on the requester's clock. `serve` runs on the
   * target and answers through its callback (or not at all); `done` runs once with the answer or null.
   */
  exchange<R>(from: Host, to: Host, serve: (answer: (r: R) => void) => void, done: (r: R | null) => void): void {
    let settled = false;
    const settle = (r: R | null) => {
      if (settled) return;
      settled = true;
      done(r);
    };
    this.transmit(from, to, 'request', () => serve((r) => this.transmit(to, from, 'reply', () => settle(r))));
    const timeout = this.clock.realDelay(from, this.requestTimeoutMs);
    this.clock.after(timeout, () => this.hosts.run(from, () => settle(null)));
  }

  // --- faults ------------------------------------------------------------------------------------

  /** Cut a→b (and b→a unless oneWay) for durMs. */
  cut(a: Host, b: Host, oneWay: boolean, durMs: number): void {
    this.block(a, b, 1);
    if (!oneWay) this.block(b, a, 1);
    this.clock.after(durMs, () => {
      this.block(a, b, -1);
      if (!oneWay) this.block(b, a, -1);
    });
  }
  /** Cut n from every other host and from the client. */
  isolate(n: Host, durMs: number): void {
    for (const h of hostsOf(this.sched)) if (h !== n) this.cut(n, h, false, durMs);
    this.block('client', n, 1);
    this.clock.after(durMs, () => this.block('client', n, -1));
  }
  /** Loss with probability p both ways on a↔b for durMs (a later loss fault on the link replaces it). */
  lossy(a: Host, b: Host, p: number, durMs: number): void {
    const set = (k: string, q: number) => (q > 0 ? this.#loss.set(k, q) : this.#loss.delete(k));
    set(this.#key(a, b), p);
    set(this.#key(b, a), p);
    this.clock.after(durMs, () => {
      set(this.#key(a, b), 0);
      set(this.#key(b, a), 0);
    });
  }
  /** Extra one-way delay on a→b for durMs. */
  slow(a: Host, b: Host, extraMs: number, durMs: number): void {
    const k = this.#key(a, b);
    this.#extraDelay.set(k, (this.#extraDelay.get(k) ?? 0) + extraMs);
    this.clock.after(durMs, () => this.#extraDelay.set(k, (this.#extraDelay.get(k) ?? 0) - extraMs));
  }
  /** A flapping link: cut for cutMs every periodMs during durMs. */
  flap(a: Host, b: Host, cutMs: number, periodMs: number, durMs: number): void {
    for (let s = 0; s + cutMs <= durMs; s += periodMs) this.clock.after(s, () => this.cut(a, b, false, cutMs));
  }
}
