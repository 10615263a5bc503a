// The writer probe: an application in the client namespace writing through the VIP every ~20 ms
// (in-netns/writer-probe.ts), and the controller's record of every write it made.
import path from 'node:path';
import { Helper } from './ipc.js';
import { appUser } from './postgres.js';
import type { Topology } from './topology.js';

export type WriteOutcome = 'ok' | 'failed' | 'unknown';

export interface WriteRecord {
  /** Unique id of the row the write inserts (lab.writes.id). */
  readonly id: number;
  readonly lane: number;
  /** Wall-clock ms when the INSERT was started, and when its outcome was known. */
  readonly sentAt: number;
  readonly doneAt: number;
  readonly outcome: WriteOutcome;
  /** For ok: which server acknowledged (its cluster_name, the node id) and on which timeline. */
  readonly server?: string;
  readonly timeline?: number;
  readonly error?: string;
}

export interface WriterConfig {
  readonly vip: string;
  /** The application's role (not a superuser). */
  readonly user: string;
  readonly port: number;
  readonly intervalMs: number;
  readonly lanes: number;
  readonly writeTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly firstId: number;
}

export interface WriterOptions {
  readonly intervalMs?: number;
  /**
   * Connections writing independently (default 12). While the VIP leads nowhere every attempt waits
   * out its connect timeout; the probe spaces such attempts over the lanes (in-netns/writer-probe.ts),
   * so one is tried every timeout/lanes (83 ms) and the probe notices the moment writes work again
   * instead of adding its own timeout.
   */
  readonly lanes?: number;
  /**
   * Deadline of one write. Short enough that a write which hangs on a frozen server ends as
   * "unknown" instead of being acknowledged seconds later, long enough for a sync commit under load.
   */
  readonly writeTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
}

export class WriterProbe {
  readonly #helper: Helper;
  readonly records: WriteRecord[] = [];
  skipped = 0;
  readonly #listeners = new Set<(batch: readonly WriteRecord[]) => void>();

  private constructor(helper: Helper) {
    this.#helper = helper;
    helper.onEvent((e) => {
      if (e.type !== 'records') return;
      const batch = e.records as WriteRecord[];
      this.records.push(...batch);
      this.skipped = Number(e.skipped ?? this.skipped);
      for (const l of this.#listeners) l(batch);
    });
  }

  static async start(t: Topology, labDir: string, options: WriterOptions = {}): Promise<WriterProbe> {
    const config: WriterConfig = {
      vip: t.vip.address,
      user: appUser,
      port: t.ports.postgres,
      intervalMs: options.intervalMs ?? 20,
      lanes: options.lanes ?? 12,
      writeTimeoutMs: options.writeTimeoutMs ?? 1_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 1_000,
      firstId: 1,
    };
    const helper = await Helper.start('writer-probe', { host: 'client' }, 'test/lab/in-netns/writer-probe.ts', [JSON.stringify(config)], path.join(labDir, 'logs', 'writer-probe.log'));
    return new WriterProbe(helper);
  }

  get pid(): number | undefined {
    return this.#helper.pid;
  }

  onRecords(listener: (batch: readonly WriteRecord[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  since(fromMs: number, toMs = Infinity): WriteRecord[] {
    return this.records.filter((r) => r.sentAt >= fromMs && r.sentAt <= toMs);
  }

  /** Resolves once `count` writes have been acknowledged after `afterMs` (optionally by `server`). */
  waitForAcks(afterMs: number, count: number, timeoutMs: number, server?: string): Promise<void> {
    const done = () => this.records.filter((r) => r.outcome === 'ok' && r.sentAt >= afterMs && (server === undefined || r.server === server)).length >= count;
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`the writer saw fewer than ${count} acknowledged writes${server ? ` from ${server}` : ''} within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.onRecords(() => {
        if (!done()) return;
        clearTimeout(timer);
        off();
        resolve();
      });
    });
  }

  /** Stops writing; resolves once the last in-flight writes ended and were recorded. */
  stop(): Promise<void> {
    return this.#helper.close(10_000);
  }
}
