// The commit guard of a FakePostgres (pgvip_commit_guard, commit-guard.ts): a deadline in the
// server's shared memory after which a primary refuses every write commit.
import type { CommitGuardStatus } from './port.js';

export class FakeCommitGuard {
  readonly #loaded: boolean;
  readonly #clock: () => number;
  /** The deadline in shared memory: null until armed, and again after every restart. */
  #deadlineMs: number | null = null;

  /** `loaded`: the library is preloaded and the extension created; `clock`: what deadlines are on. */
  constructor(loaded: boolean, clock: () => number) {
    this.#loaded = loaded;
    this.#clock = clock;
  }

  /** The server stopped: shared memory goes with it. */
  clear(): void {
    this.#deadlineMs = null;
  }

  status(inRecovery: boolean): CommitGuardStatus {
    if (!this.#loaded) return { loaded: false, created: false, enabled: false, active: false, remainingMs: null };
    const d = this.#deadlineMs;
    return {
      loaded: true,
      created: true,
      enabled: true,
      active: d !== null && !inRecovery,
      remainingMs: d === null ? null : d - this.#clock(),
    };
  }

  /** Sets the deadline; false when the server does not have the guard. */
  arm(untilMs: number): boolean {
    if (!this.#loaded) return false;
    this.#deadlineMs = untilMs;
    return true;
  }

  /** The guard's refusal of a write commit, as pgvip_commit_guard words it, or null when it lets it through. */
  refusal(what: string, inRecovery: boolean): string | null {
    const d = this.#deadlineMs;
    if (d === null || inRecovery) return null;
    const lateMs = this.#clock() - d;
    return lateMs >= 0 ? `pgvip commit guard: cannot ${what}: this server's pgvip lease ended ${lateMs.toFixed(1)} ms ago` : null;
  }
}
