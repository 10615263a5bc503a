// Warnings about refused requests, rate-limited. A refusal is worth a log line (a node with the wrong
// key, a script with a stale token, someone probing), but whoever sends the requests decides how many
// there are: 20,000 bad-token requests once printed 20,000 warn lines in 3 s, drowning every decision
// the daemon logged and filling the disk. So each kind of refusal logs its first few lines per
// interval, then counts, and says how many it left out when the interval ends.
//
// Kinds must come from a fixed set (an error code, a reason), never from the request: each kind
// holds a little state until its interval ends.

/** The part of a pino logger this needs. */
export interface WarnLogger {
  warn(fields: object, msg: string): void;
}

/** Time and timers, injectable so tests can move a fake clock. */
export interface LogTimers {
  nowMs(): number;
  /** Runs fn after ms; the returned function cancels it. Must not keep the process alive. */
  after(ms: number, fn: () => void): () => void;
}

export const realTimers: LogTimers = {
  nowMs: () => performance.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
};

export interface RateLimitedLogOptions {
  readonly log: WarnLogger;
  /** Lines logged per kind and interval before the rest are only counted (default 5). */
  readonly linesPerInterval?: number;
  /** Default 60 s. */
  readonly intervalMs?: number;
  readonly timers?: LogTimers;
}

export interface RateLimitedLog {
  /** Logs at warn level unless this kind already logged its share of the current interval. */
  warn(kind: string, fields: object, msg: string): void;
  /** Writes the pending "suppressed" summaries now (at shutdown) and cancels their timers. */
  flush(): void;
}

interface Window {
  readonly startMs: number;
  logged: number;
  suppressed: number;
  cancel: (() => void) | null;
}

export function createRateLimitedLog(options: RateLimitedLogOptions): RateLimitedLog {
  const { log } = options;
  const max = options.linesPerInterval ?? 5;
  const intervalMs = options.intervalMs ?? 60_000;
  const timers = options.timers ?? realTimers;
  const windows = new Map<string, Window>();

  function summarise(kind: string, w: Window): void {
    w.cancel?.();
    windows.delete(kind);
    if (w.suppressed > 0) {
      const seconds = Math.max(1, Math.round((timers.nowMs() - w.startMs) / 1000));
      log.warn({ kind, suppressed: w.suppressed }, `suppressed ${w.suppressed} similar line${w.suppressed === 1 ? '' : 's'} (${kind}) in the last ${seconds} s`);
    }
  }

  return {
    warn(kind, fields, msg) {
      const now = timers.nowMs();
      let w = windows.get(kind);
      if (w !== undefined && now - w.startMs >= intervalMs) {
        summarise(kind, w);
        w = undefined;
      }
      if (w === undefined) {
        w = { startMs: now, logged: 0, suppressed: 0, cancel: null };
        windows.set(kind, w);
      }
      if (w.logged < max) {
        w.logged++;
        log.warn({ kind, ...fields }, msg);
        return;
      }
      w.suppressed++;
      // The summary is due when the interval ends, even if no further refusal comes to trigger it.
      if (w.cancel === null) {
        const due = w;
        w.cancel = timers.after(Math.max(0, w.startMs + intervalMs - now), () => {
          if (windows.get(kind) === due) summarise(kind, due);
        });
      }
    },
    flush() {
      for (const [kind, w] of [...windows]) summarise(kind, w);
    },
  };
}
