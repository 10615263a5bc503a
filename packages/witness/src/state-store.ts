// The witness's durable state: one file (<stateDir>/witness-state.json) holding the term, vote,
// sync-eligibility and maintenance flag of every cluster. Each save rewrites the file atomically
// and fsyncs it (shared durable-file), and returns only once it is on disk: the runner answers a
// vote only after that.
import path from 'node:path';
import {
  createDurableFile, initialWitnessDurable, witnessStateFileName, witnessStateFileSchema, type WitnessDurable,
  type WitnessDurableFile,
} from '@pgvip/shared';
import { systemClock, type Clock } from './clock.js';

export interface WitnessStateStore {
  readonly path: string;
  /** The stored state of a cluster, or the initial state (term 0, no vote) for a new one. */
  durable(cluster: string): WitnessDurable;
  /** Durably replaces one cluster's state. Throws PGVIP_STATE_WRITE (the old state stays in force). */
  save(cluster: string, durable: WitnessDurable): void;
}

export const stateFileName = witnessStateFileName;

/**
 * Reads the state file (throws PGVIP_STATE_CORRUPT when it exists but does not parse). `clock`
 * converts the last failover's time between the core's monotonic milliseconds and the file's
 * wall-clock instant.
 */
export function openWitnessStateStore(stateDir: string, clock: Clock = systemClock): WitnessStateStore {
  const file = createDurableFile<Record<string, WitnessDurableFile>>(
    path.join(stateDir, stateFileName),
    witnessStateFileSchema,
    {},
  );
  // Clusters removed from the config stay in the file: if one is added back, its term and vote must
  // still be known, or the witness could vote twice in a term.
  let all: Readonly<Record<string, WitnessDurableFile>> = { ...file.load() };
  return {
    path: file.path,
    durable(cluster) {
      return Object.hasOwn(all, cluster) ? fromFile(all[cluster]!, clock) : initialWitnessDurable;
    },
    save(cluster, durable) {
      const next = { ...all, [cluster]: toFile(durable, clock) };
      file.save(next);
      all = next;
    },
  };
}

function toFile(d: WitnessDurable, clock: Clock): WitnessDurableFile {
  const { lastFailover, ...rest } = d;
  if (lastFailover === undefined) return rest;
  const at = new Date(clock.wallMs() - (clock.monotonicMs() - lastFailover.atMs)).toISOString();
  return { ...rest, lastFailover: { term: lastFailover.term, to: lastFailover.to, at } };
}

function fromFile(f: WitnessDurableFile, clock: Clock): WitnessDurable {
  const { lastFailover, ...rest } = f;
  if (lastFailover === undefined) return rest;
  const atMs = clock.monotonicMs() - (clock.wallMs() - Date.parse(lastFailover.at));
  return { ...rest, lastFailover: { term: lastFailover.term, to: lastFailover.to, atMs } };
}
