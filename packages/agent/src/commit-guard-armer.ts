// Keeps PostgreSQL's commit guard (pgvip_commit_guard) armed with this node's lease end: after every
// core step the runner says until when this node may write, and the armer passes each new value on,
// one call at a time, in order. PostgreSQL then refuses every write commit after that moment by
// itself, which is what protects a primary that was frozen past its lease: it runs again before this
// agent does, and the read-only fence needs this agent.
import type { Logger } from 'pino';
import type { MonotonicClock } from './clock.js';
import type { PostgresPort } from './postgres/port.js';

export type CommitGuardMode = 'auto' | 'off';

export interface CommitGuardArmerDeps {
  readonly pg: Pick<PostgresPort, 'armCommitGuard'>;
  readonly logger: Logger;
  readonly clock: MonotonicClock;
  readonly mode: CommitGuardMode;
}

/** A server without the extension is asked again this often (it may be restarted with it). */
export const commitGuardRecheckMs = 30_000;

export class CommitGuardArmer {
  readonly #d: CommitGuardArmerDeps;
  /** The deadline PostgreSQL holds, as far as this process knows (null: never armed by it). */
  #armedUntilMs: number | null = null;
  #inFlight: number | null = null;
  /** The newest deadline that waits for the call in flight to finish. */
  #next: number | null = null;
  #absentUntilMs = -Infinity;
  #said: 'armed' | 'absent' | 'failing' | null = null;
  #done: Promise<void> = Promise.resolve();

  constructor(deps: CommitGuardArmerDeps) {
    this.#d = deps;
  }

  /**
   * `leaseUntilMs`: the end of this node's lease (the agent's clock) while it holds one, else null.
   * A lease that ends early (released for a switchover, a newer term seen) ends the guard's now.
   */
  update(leaseUntilMs: number | null): void {
    if (this.#d.mode === 'off') return;
    const now = this.#d.clock();
    let target = leaseUntilMs;
    if (target === null) {
      const armed = this.#next ?? this.#inFlight ?? this.#armedUntilMs;
      if (armed === null || armed <= now) return;
      target = now;
    }
    if (target === (this.#next ?? this.#inFlight ?? this.#armedUntilMs)) return;
    if (now < this.#absentUntilMs) return;
    if (this.#inFlight !== null) {
      this.#next = target;
      return;
    }
    this.#send(target);
  }

  /** Resolves once no call is in flight (daemon shutdown). */
  idle(): Promise<void> {
    return this.#done;
  }

  #send(untilMs: number): void {
    this.#inFlight = untilMs;
    this.#done = this.#d.pg
      .armCommitGuard(untilMs)
      .then(
        (loaded) => {
          if (loaded) {
            this.#armedUntilMs = untilMs;
            this.#say('armed', 'info', 'commit guard armed: PostgreSQL refuses write commits after this node\'s lease ends');
          } else {
            this.#absentUntilMs = this.#d.clock() + commitGuardRecheckMs;
            this.#next = null;
            this.#say('absent', 'warn', 'commit guard absent: pgvip_commit_guard is not in shared_preload_libraries, so a primary frozen past its lease may commit writes for a moment after it runs again (docs/deploy.md)');
          }
        },
        (err: unknown) => this.#say('failing', 'warn', 'could not arm the commit guard; retrying at the next lease renewal', err),
      )
      .finally(() => {
        this.#inFlight = null;
        const next = this.#next;
        this.#next = null;
        if (next !== null && next !== this.#armedUntilMs) this.#send(next);
      });
  }

  /** Each kind of news once, until it changes (a renewal every heartbeat must not log every heartbeat). */
  #say(what: 'armed' | 'absent' | 'failing', level: 'info' | 'warn', message: string, err?: unknown): void {
    if (this.#said === what) {
      this.#d.logger.debug(err === undefined ? {} : { err }, message);
      return;
    }
    this.#said = what;
    this.#d.logger[level](err === undefined ? {} : { err }, message);
  }
}
