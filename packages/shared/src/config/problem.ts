// The one sentence shape of every config problem: `<what is wrong> (got <value>); <what would be
// valid>`. Field checks get their "(got …)" added by the loader (issues.ts); cross-field checks
// know better which value to show, so they compose the whole sentence here and report it with
// `addComposedIssue`, which tells the loader to print it as it is.
import type { z } from 'zod';

const maxShownLength = 60;

/** A value as a person would type it in YAML, shortened so one problem stays on one line. */
export function showValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > maxShownLength ? `${text.slice(0, maxShownLength - 1)}…` : text;
}

export function problem(what: string, got: unknown, fix: string): string {
  return `${what} (got ${showValue(got)}); ${fix}`;
}

/**
 * Reports a problem whose message is already complete (it names the value and the fix): the
 * `composed` param tells the loader to print it as it is; `kind` sorts it (e.g. timing issues).
 */
export function addComposedIssue(ctx: z.RefinementCtx, path: PropertyKey[], message: string, kind?: string): void {
  ctx.addIssue({ code: 'custom', path, message, params: kind === undefined ? { composed: true } : { composed: true, kind } });
}
