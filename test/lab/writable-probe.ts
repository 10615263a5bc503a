// Split brain measured at the database itself: asks each server directly (psql on its own host, over
// loopback, so no network fault hides it) whether it would accept a write right now — not in
// recovery and not fenced read-only — and records when BOTH would. Through the VIP the VPC fabric
// lets one server at a time reach clients, so a second writable primary shows up here, not in the
// writer probe: it is what any client reaching that server by its own address would write to.
import { psqlResult } from './postgres.js';
import { dbNodes, type DbNode } from './topology.js';

export interface DualWritable {
  /** Total time both servers were writable (sum over the sampled intervals). */
  readonly totalMs: number;
  /** The longest continuous stretch. */
  readonly longestMs: number;
  readonly samples: number;
}

async function writable(node: DbNode, timeoutMs: number): Promise<boolean> {
  const r = await psqlResult(node, "SELECT NOT pg_is_in_recovery() AND current_setting('default_transaction_read_only') = 'off'", { timeoutMs });
  // A server that does not answer (frozen, killed) accepts no write.
  return r.code === 0 && r.stdout.trim() === 't';
}

export class WritableProbe {
  #running = false;
  #loop: Promise<void> | null = null;
  #total = 0;
  #longest = 0;
  #samples = 0;

  /** Samples both servers every `intervalMs` until stop(). */
  start(intervalMs = 400): void {
    this.#running = true;
    this.#loop = (async () => {
      let dualSince: number | null = null;
      let last = Date.now();
      while (this.#running) {
        const [a, b] = await Promise.all(dbNodes.map((n) => writable(n, 1_500)));
        const now = Date.now();
        this.#samples += 1;
        if (a && b) {
          this.#total += now - last;
          dualSince ??= last;
          this.#longest = Math.max(this.#longest, now - dualSince);
        } else {
          dualSince = null;
        }
        last = now;
        await new Promise((r) => setTimeout(r, intervalMs));
      }
    })();
  }

  async stop(): Promise<DualWritable> {
    this.#running = false;
    await this.#loop;
    return { totalMs: this.#total, longestMs: this.#longest, samples: this.#samples };
  }
}
