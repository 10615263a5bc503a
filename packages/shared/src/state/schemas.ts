// Schemas of the durable states, so a file written by one version is checked when read back.
import { z } from 'zod';
import type { AgentDurable } from '../core/agent.js';
import type { WitnessDurable } from '../core/witness.js';

const term = z.number().int().nonnegative();
const node = z.string().min(1).max(63).nullable();

export const agentDurableSchema: z.ZodType<AgentDurable> = z.object({ term, primaryOfTerm: node }).strict();

export const witnessDurableSchema: z.ZodType<WitnessDurable> = z
  .object({ term, primaryOfTerm: node, votedTerm: term, votedFor: node, syncEligible: node, maintenance: z.boolean() })
  .strict();

/** One witness file holds the durable state of every cluster it serves. */
export const witnessStateFileSchema = z.record(z.string(), witnessDurableSchema);

/** How many times an agent process has started on this node (seeds its lease-request seqs). */
export const bootCountSchema: z.ZodType<number> = z.number().int().nonnegative().max(2 ** 20);
