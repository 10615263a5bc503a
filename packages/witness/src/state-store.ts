// The witness's durable state: one file (<stateDir>/witness-state.json) holding the term, vote,
// sync-eligibility and maintenance flag of every cluster. Each save rewrites the file atomically
// and fsyncs it (shared durable-file), and returns only once it is on disk: the runner answers a
// vote only after that.
import path from 'node:path';
import { createDurableFile, initialWitnessDurable, witnessStateFileName, witnessStateFileSchema, type WitnessDurable } from '@pgvip/shared';

export interface WitnessStateStore {
  readonly path: string;
  /** The stored state of a cluster, or the initial state (term 0, no vote) for a new one. */
  durable(cluster: string): WitnessDurable;
  /** Durably replaces one cluster's state. Throws PGVIP_STATE_WRITE (the old state stays in force). */
  save(cluster: string, durable: WitnessDurable): void;
}

export const stateFileName = witnessStateFileName;

/** Reads the state file (throws PGVIP_STATE_CORRUPT when it exists but does not parse). */
export function openWitnessStateStore(stateDir: string): WitnessStateStore {
  const file = createDurableFile<Record<string, WitnessDurable>>(
    path.join(stateDir, stateFileName),
    witnessStateFileSchema,
    {},
  );
  // Clusters removed from the config stay in the file: if one is added back, its term and vote must
  // still be known, or the witness could vote twice in a term.
  let all: Readonly<Record<string, WitnessDurable>> = { ...file.load() };
  return {
    path: file.path,
    durable(cluster) {
      return Object.hasOwn(all, cluster) ? (all[cluster] as WitnessDurable) : initialWitnessDurable;
    },
    save(cluster, durable) {
      const next = { ...all, [cluster]: durable };
      file.save(next);
      all = next;
    },
  };
}
