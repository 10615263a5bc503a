// "Did you mean …?" for misspelt keys and enum values. A typo in a config file should cost the
// operator one glance, not a trip to the docs.

/**
 * Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
 * neighbours each cost 1, so "prot" is one edit from "port" (a plain Levenshtein distance says 2).
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number): number => d[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

/**
 * The candidate closest to `input` (case and `_`/`-` differences ignored), or undefined when
 * nothing is close enough to be a plausible typo — a wild guess is worse than no guess.
 */
export function closestMatch(input: string, candidates: readonly string[]): string | undefined {
  const normalise = (s: string): string => s.toLowerCase().replace(/[_\s]/g, '-');
  const wanted = normalise(input);
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(wanted, normalise(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best === undefined) return undefined;
  // Allow about one edit per three characters, at least one and at most three.
  const allowed = Math.min(3, Math.max(1, Math.floor(Math.max(wanted.length, best.length) / 3)));
  return bestDistance <= allowed ? best : undefined;
}
