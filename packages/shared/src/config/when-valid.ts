// Cross-field checks should run even when an unrelated field is broken, so one run of the loader
// lists every problem; but they must not read a field that itself failed to parse. `whenValidAt`
// gives a check exactly that condition.
import type { z } from 'zod';

/** A path relative to the refined object; '*' matches any array index or key. */
export type FieldPattern = readonly (string | number)[];

function overlaps(issuePath: readonly PropertyKey[], pattern: FieldPattern): boolean {
  const shared = Math.min(issuePath.length, pattern.length);
  for (let i = 0; i < shared; i++) {
    const want = pattern[i];
    if (want !== '*' && want !== issuePath[i]) return false;
  }
  return true; // one path is a prefix of the other: the field or something containing it is broken
}

/** A zod `when` predicate: run the check unless a field it reads (or a parent of one) has an issue. */
export function whenValidAt(...patterns: FieldPattern[]): { when: (payload: z.core.ParsePayload) => boolean } {
  return {
    when: (payload) => !payload.issues.some((issue) => patterns.some((pattern) => overlaps(issue.path ?? [], pattern))),
  };
}
