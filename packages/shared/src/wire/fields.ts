// The field types every protocol message is built from. Each one is bounded: a peer's message is
// untrusted input until it has been parsed, and nothing unbounded should reach logs or memory.
import { z } from 'zod';
import { PROTOCOL_VERSION } from '../core/messages.js';
import { MAX_TERM } from '../core/terms.js';
import { MAX_LSN, formatLsn, lsnProblem, parseLsn } from './lsn.js';

// Node ids and cluster names also appear inside the authentication header, so they may not contain
// spaces or '='. The pattern is a superset of the DNS labels the config accepts, so the wire never
// rejects a name the config allowed.
const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const nameRule = "must be 1–63 letters, digits, '.', '_' or '-', starting with a letter or digit";

export function isValidName(text: string): boolean {
  return namePattern.test(text);
}

export const nodeIdSchema = z.string().regex(namePattern, { error: `a node id ${nameRule}` });
export const clusterNameSchema = z.string().regex(namePattern, { error: `a cluster name ${nameRule}` });

/** Sequence numbers: whole numbers that JSON and JavaScript both represent exactly. */
export const counterSchema = z.int({ error: 'must be a whole number' }).min(0, { error: 'must not be negative' });

/** What a term beyond the bound is told (core/terms.ts says why the bound is 2^48). */
export const termRangeRule = `a term is a whole number from 0 to 2^48 (${MAX_TERM}); elections count up one at a time, so no real term gets near it`;

/** Terms: bounded far below 2^53 so that the next term is always exact (core/terms.ts). */
export const termSchema = counterSchema.max(MAX_TERM, { error: termRangeRule });

/** PostgreSQL timeline ids are unsigned 32-bit; 0 stands for "not known yet". */
export const timelineSchema = counterSchema.max(0xffffffff, { error: 'a timeline id fits in 32 bits' });

/** Human-readable reasons travel for logs and operators; long enough for a sentence, never a dump. */
export const reasonSchema = z.string().max(1000, { error: 'reasons are at most 1000 characters' });

export const durationMsSchema = z.number().min(0, { error: 'a duration must not be negative' });

/** On the wire an LSN is PostgreSQL's 'X/Y' text; parsed, it is a bigint byte offset. */
export const lsnSchema = z.codec(
  z.string().max(17, { error: "an LSN is at most 17 characters ('FFFFFFFF/FFFFFFFF')" }),
  z.bigint().min(0n).max(MAX_LSN),
  {
    decode: (text, ctx) => {
      const problem = lsnProblem(text);
      if (problem === null) return parseLsn(text);
      ctx.issues.push({ code: 'custom', message: problem, input: text });
      return z.NEVER;
    },
    encode: (lsn) => formatLsn(lsn),
  },
);

/** The fields every message starts with (core `Envelope`). */
export const envelopeShape = {
  v: z.literal(PROTOCOL_VERSION, { error: `the protocol version must be ${PROTOCOL_VERSION}` }),
  cluster: clusterNameSchema,
  term: termSchema,
  from: nodeIdSchema,
};
