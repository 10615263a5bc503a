// Schemas of the durable states, so a file written by one version is checked when read back.
import { z } from 'zod';
import type { AgentDurable } from '../core/agent.js';
import { MAX_TERM } from '../core/terms.js';
import type { WitnessDurable } from '../core/witness.js';

// Files written before the bound existed hold small terms and load as before. A term above it can
// only come from a forged message adopted by a release without the bound; a node that loaded it
// could not persist its next term, so it is refused here with the way out.
const term = z
  .number()
  .int()
  .nonnegative()
  .max(MAX_TERM, {
    error: `a term above 2^48 (${MAX_TERM}) was never elected: a release before the bound adopted a forged one (PGVIP_TERM_OUT_OF_RANGE); set it to the cluster's real term, the highest term in the other nodes' state files that is below the bound`,
  });
const node = z.string().min(1).max(63).nullable();

export const agentDurableSchema: z.ZodType<AgentDurable> = z.object({ term, primaryOfTerm: node }).strict();

/**
 * A witness's durable state as its file holds it: the last failover's time as a wall-clock instant
 * (`at`, ISO 8601), since the core's monotonic milliseconds mean nothing to the next process (the
 * witness's state store converts both ways). Files written before the field existed load without it.
 */
export interface WitnessDurableFile extends Omit<WitnessDurable, 'lastFailover'> {
  readonly lastFailover?: { readonly term: number; readonly to: string; readonly at: string };
}

export const witnessDurableSchema: z.ZodType<WitnessDurableFile> = z
  .object({
    term, primaryOfTerm: node, votedTerm: term, votedFor: node, syncEligible: node, maintenance: z.boolean(),
    lastFailover: z
      .object({ term, to: z.string().min(1).max(63), at: z.iso.datetime({ offset: true }) })
      .strict()
      .optional(),
  })
  .strict();

/** One witness file holds the durable state of every cluster it serves. */
export const witnessStateFileSchema = z.record(z.string(), witnessDurableSchema);

/** How many times an agent process has started on this node (seeds its lease-request seqs). */
export const bootCountSchema: z.ZodType<number> = z.number().int().nonnegative().max(2 ** 20);
