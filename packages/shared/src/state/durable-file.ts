// Durable state on disk: the term and promises a node must never forget (I2, I6).
// Writes are atomic and durable: temp file → fsync → rename → fsync of the directory, so a crash at
// any instant leaves either the old or the new state, never a torn one. A file that exists but does
// not parse stops the daemon with PGVIP_STATE_CORRUPT: silently starting again at term 0 would let a
// node vote twice in one term.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { PgvipError } from '../errors.js';

export interface DurableFile<T> {
  readonly path: string;
  /** The stored state, or `initial` when no file exists yet. Throws PGVIP_STATE_CORRUPT. */
  load(): T;
  /** Atomically replace the stored state; returns once it is on disk. Throws PGVIP_STATE_WRITE. */
  save(state: T): void;
}

interface Envelope {
  readonly format: 'pgvip-state';
  readonly version: 1;
  readonly state: unknown;
}

/** bigint values (LSNs) are stored as decimal strings tagged with a trailing 'n'. */
function replacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? `${value.toString()}n` : value;
}

export function createDurableFile<T>(filePath: string, schema: z.ZodType<T>, initial: T): DurableFile<T> {
  const dir = path.dirname(filePath);
  return {
    path: filePath,
    load(): T {
      let text: string;
      try {
        text = readFileSync(filePath, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return initial;
        throw new PgvipError('PGVIP_STATE_CORRUPT', `cannot read ${filePath}: ${(e as Error).message}`, { cause: e });
      }
      let parsed: Envelope;
      try {
        parsed = JSON.parse(text) as Envelope;
      } catch (e) {
        throw new PgvipError('PGVIP_STATE_CORRUPT', `${filePath} is not valid JSON (${(e as Error).message}); restore it from a backup or, if this node's history is known, rewrite it — never delete it to start over at term 0`, { cause: e });
      }
      if (parsed?.format !== 'pgvip-state' || parsed.version !== 1) {
        throw new PgvipError('PGVIP_STATE_CORRUPT', `${filePath} is not a pgvip state file (format ${String(parsed?.format)}, version ${String(parsed?.version)})`);
      }
      const result = schema.safeParse(parsed.state);
      if (!result.success) {
        const where = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
        throw new PgvipError('PGVIP_STATE_CORRUPT', `${filePath} has invalid content: ${where}`);
      }
      return result.data;
    },
    save(state: T): void {
      const tmp = `${filePath}.tmp-${process.pid}`;
      const body = `${JSON.stringify({ format: 'pgvip-state', version: 1, state } satisfies Envelope, replacer, 2)}\n`;
      try {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        const fd = openSync(tmp, 'w', 0o600);
        try {
          writeSync(fd, body);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        renameSync(tmp, filePath);
        const dfd = openSync(dir, 'r');
        try {
          fsyncSync(dfd);
        } finally {
          closeSync(dfd);
        }
      } catch (e) {
        throw new PgvipError('PGVIP_STATE_WRITE', `cannot persist ${filePath}: ${(e as Error).message}`, { cause: e });
      }
    },
  };
}
