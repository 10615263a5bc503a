// Shared pieces of the notifier tests: events, a recording logger, a failure collector and a
// manual clock that walks an e-mail rate window forward without waiting an hour.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import type { PgvipEvent } from '../src/events.js';
import type { NotifierClock, NotifyLogger } from '../src/notify/index.js';

let nextId = 1;

export function event(overrides: Partial<PgvipEvent> = {}): PgvipEvent {
  return {
    id: nextId++,
    at: new Date(Date.UTC(2025, 0, 2, 3, 4, 5)).toISOString(),
    cluster: 'main',
    type: 'failover',
    node: 'db-b',
    term: 8,
    detail: 'db-b promoted: db-a unreachable for 3 checks, witness voted term 8',
    ...overrides,
  };
}

export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly obj: object;
  readonly msg: string | undefined;
}

export function memoryLogger(): NotifyLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (obj: object, msg?: string) => void lines.push({ level, obj, msg });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export interface Failure {
  readonly event: PgvipEvent;
  readonly channel: string;
  readonly message: string;
}

/** Collects onFailure calls; `next(n)` resolves once n failures have arrived in total. */
export function failureCollector() {
  const failures: Failure[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  return {
    failures,
    onFailure(e: PgvipEvent, channel: string, err: Error) {
      failures.push({ event: e, channel, message: err.message });
      for (const w of waiters.filter((w) => failures.length >= w.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    },
    next(n: number, timeoutMs = 5_000): Promise<void> {
      if (failures.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`expected ${n} failures within ${timeoutMs} ms, got ${failures.length}: ${JSON.stringify(failures)}`)), timeoutMs);
        waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
  };
}

/** A clock that only moves when told; timers fire inside advance(). */
export function manualClock(): NotifierClock & { advance(ms: number): void; pending(): number } {
  let nowMs = 1_000_000;
  const timers = new Set<{ at: number; fn: () => void }>();
  return {
    now: () => nowMs,
    setTimer(fn, ms) {
      const timer = { at: nowMs + ms, fn };
      timers.add(timer);
      return () => void timers.delete(timer);
    },
    advance(ms) {
      const until = nowMs + ms;
      for (;;) {
        const due = [...timers].filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        timers.delete(due);
        nowMs = Math.max(nowMs, due.at);
        due.fn();
      }
      nowMs = until;
    },
    pending: () => timers.size,
  };
}

/** A temporary directory removed when the test ends. */
export function tempDir(t: TestContext, prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function writeSecret(dir: string, name: string, content: string, mode = 0o600): string {
  const file = path.join(dir, name);
  writeFileSync(file, content);
  chmodSync(file, mode);
  return file;
}

export function waitFor(predicate: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (predicate()) return resolve();
      if (performance.now() > deadline) return reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      setTimeout(poll, 10);
    };
    poll();
  });
}
