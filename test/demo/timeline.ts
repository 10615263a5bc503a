// Turns a simulated run into the failover timeline a person wants to see: fault → detected → vote →
// promoted → VIP moved → writes resume, in milliseconds from the fault.
import type { RunResult } from '../sim/world.js';

export interface Milestone {
  readonly label: string;
  readonly atMs: number | null;
}

function firstLine(r: RunResult, fromMs: number, pattern: RegExp): number | null {
  for (const line of r.transcript) {
    const m = /^\[\s*([\d.]+)\]/.exec(line);
    if (m === null) continue;
    const t = Number(m[1]) * 1000;
    if (t >= fromMs && pattern.test(line)) return t;
  }
  return null;
}

export function failoverTimeline(r: RunResult, faultAtMs: number, newPrimary: string): Milestone[] {
  const firstAck = r.acks.find((a) => a.t >= faultAtMs && a.node === newPrimary);
  return [
    { label: 'fault injected', atMs: faultAtMs },
    { label: 'failure detected', atMs: firstLine(r, faultAtMs, /failure-detected|released its lease/) },
    { label: 'vote granted', atMs: firstLine(r, faultAtMs, /witness\s+voted for|received term/) },
    { label: 'postgresql promoted', atMs: firstLine(r, faultAtMs, /postgresql promoted/) },
    { label: 'VIP routes to the new primary', atMs: firstLine(r, faultAtMs, new RegExp(`VIP now routes to ${newPrimary}`)) },
    { label: 'first acknowledged write', atMs: firstAck?.t ?? null },
    { label: 'old primary rejoined', atMs: firstLine(r, faultAtMs, /rejoined as a standby/) },
  ];
}

export function renderTimeline(ms: Milestone[], faultAtMs: number): string {
  return ms
    .map((m) => `  ${m.atMs === null ? '      —' : `+${String(Math.round(m.atMs - faultAtMs)).padStart(6)} ms`}  ${m.label}`)
    .join('\n');
}
