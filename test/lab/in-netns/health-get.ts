// What the two /health load generators (health-load.ts, health-rate.ts) share: one timed GET, and
// the latency summary they print as JSON.
import type { Pool } from 'undici';

/** Milliseconds from `sentAt` to a complete 200 answer; null for any other answer or an error. */
export async function timedGet(pool: Pool, path: string, sentAt: number): Promise<number | null> {
  try {
    const res = await pool.request({ method: 'GET', path, headersTimeout: 2000, bodyTimeout: 2000 });
    await res.body.text();
    return res.statusCode === 200 ? performance.now() - sentAt : null;
  } catch {
    return null;
  }
}

/** The summary line: request count, errors, p50/p99/max of the latencies (sorted in place). */
export function latencySummary(latencies: number[], extra: Record<string, number>): string {
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? null;
  return JSON.stringify({
    requests: latencies.length,
    ...extra,
    p50_ms: q(0.5),
    p99_ms: q(0.99),
    max_ms: latencies.at(-1) ?? null,
  });
}
