// A small seeded PRNG (mulberry32): the simulator's only source of randomness, so a seed replays a run.
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }
}

/**
 * Independent random streams of one run, each named by what draws from it (a link and direction,
 * a node's PostgreSQL, EC2, …) and seeded from the run's seed and that name. A draw from one
 * stream never shifts another, so the order in which a step's output runs (sends before or after
 * an effect starts) changes no latency: each message's and effect's delay depends only on the
 * draws of its own stream, and a seed still replays the run.
 */
export class RngStreams {
  readonly #streams = new Map<string, Rng>();
  constructor(private readonly seed: number) {}
  get(name: string): Rng {
    let r = this.#streams.get(name);
    if (r === undefined) {
      r = new Rng(mix(this.seed, name));
      this.#streams.set(name, r);
    }
    return r;
  }
}

/** FNV-1a of the name, folded into the seed and scrambled (so nearby seeds give unrelated streams). */
function mix(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}
