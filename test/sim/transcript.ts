// The readable transcript of a run (golden.ts pins it byte for byte) and the digest of every core
// output that goes into it.
import { createHash } from 'node:crypto';
import type { SimClock } from './clock.js';

/** Reasons of routine steps, left out of the readable transcript (the digest still covers them). */
const ROUTINE =
  /^(nothing to do|answered (lease-request|vote-request|sync-update)|noted (lease-reply|ack|sync-update-reply)|effect finished|polled)/;

export class Transcript {
  readonly lines: string[] = [];
  readonly #digest: OutputDigest | null;

  /**
   * `record` off (bulk runs) makes every call here a no-op. `digestEveryMs`: see
   * RunOptions.digestEveryMs in world.ts.
   */
  constructor(private readonly clock: SimClock, readonly record: boolean, digestEveryMs: number | undefined) {
    this.#digest = record && digestEveryMs !== undefined ? new OutputDigest(digestEveryMs) : null;
  }

  log(who: string, text: string): void {
    if (this.record) this.lines.push(`[${(this.clock.t / 1000).toFixed(3).padStart(7)}] ${who.padEnd(8)} ${text}`);
  }
  /** One core step's output, into the digest (emitting the digest lines that fell due before it). */
  noteOutput(who: string, reason: string, actions: readonly unknown[], verdict?: unknown): void {
    const d = this.#digest;
    if (d === null) return;
    while (this.clock.t >= d.nextAtMs) {
      this.log('DIGEST', d.value());
      d.nextAtMs += d.everyMs;
    }
    d.add(canonicalJson([who, Math.round(this.clock.t * 1000), reason, actions, verdict ?? null]));
  }
  /** A core step's reason, unless it is routine. */
  noteReason(who: string, reason: string): void {
    if (!this.record) return;
    if (ROUTINE.test(reason)) return;
    this.log(who, reason);
  }
  /** The last digest line, at the end of the run. */
  end(): void {
    if (this.#digest !== null) this.log('DIGEST', `${this.#digest.value()} (end)`);
  }
}

/** A running sha256 over the core's outputs. */
class OutputDigest {
  readonly #hash = createHash('sha256');
  nextAtMs: number;
  constructor(readonly everyMs: number) {
    this.nextAtMs = everyMs;
  }
  add(text: string): void {
    this.#hash.update(text).update('\n');
  }
  /** The digest so far (the running hash goes on). */
  value(): string {
    return `outputs so far ${this.#hash.copy().digest('hex').slice(0, 16)}`;
  }
}

/** JSON with sorted keys and bigints as strings: no object-order accident changes it. */
export function canonicalJson(v: unknown): string {
  if (typeof v === 'bigint') return `"${v}n"`;
  if (v === undefined) return 'null';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}
