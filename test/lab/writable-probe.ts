// Split brain measured at the database itself, over each server's own loopback (so no network fault
// hides it). Through the VIP the VPC fabric lets one server at a time reach clients, so a second
// writable primary shows up here, not in the writer probe: it is what any client reaching that server
// by its own address would write to. Two probes:
//
// - ServerClockWritableProbe (bench:failover): a writer on each database host writes to its own server
//   every 50 ms (synchronous_commit = local, as any client may ask) and each acknowledged write carries
//   the server's clock_timestamp(). The lab's hosts share one machine, so the servers' clocks are one
//   clock: the windows in which BOTH servers acknowledged writes are compared on it directly. A frozen
//   host acknowledges nothing while frozen, so the freeze no longer counts as "writable".
// - WritableProbe (bench:anchors): asks each server with psql whether it would accept a write (not in
//   recovery, not read-only) and counts the sampling interval in which both said yes. A frozen host's
//   answer arrives after the thaw and its whole wait counts: an upper bound.
import { createDirectWritesTable, DirectWriter, type DirectWrite } from './direct-writer.js';
import { psqlResult } from './postgres.js';
import { dbNodes, type DbNode, type Topology } from './topology.js';

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

/** A stretch of time, in ms on the servers' (shared) clock. */
export interface Window {
  readonly fromMs: number;
  readonly toMs: number;
}

export interface ServerClockDual {
  /** Total length of the windows in which both servers acknowledged writes. */
  readonly totalMs: number;
  /** The longest such window (0 when one side acknowledged a single write inside the other's stretch). */
  readonly longestMs: number;
  readonly windows: readonly Window[];
  /** Probe writes looked at. */
  readonly writes: number;
}

/**
 * When the server took an acknowledged write: its own clock at the INSERT, unless the answer took
 * longer than `stallMs` — then the server stalled (was frozen) between the INSERT and the commit, which
 * happened at the end of the wait: the answer's arrival is the commit's time on the same clock.
 */
export function serverTimeOf(w: DirectWrite, stallMs: number): number {
  if (w.outcome !== 'ok' || w.writtenAtMs === undefined) return w.doneAt;
  return w.doneAt - w.sentAt > stallMs ? w.doneAt : w.writtenAtMs;
}

/**
 * The stretches in which `node` acknowledged writes: consecutive acknowledged writes (by server time)
 * with no refused or failed attempt between them and no more than `maxStepMs` apart. A write that
 * waited out a freeze is dated after it, so the freeze splits the stretch.
 */
export function writableStretches(writes: readonly DirectWrite[], node: string, maxStepMs: number): Window[] {
  const own = writes
    .filter((w) => w.target === node)
    .map((w) => ({ ok: w.outcome === 'ok', atMs: serverTimeOf(w, maxStepMs) }))
    .sort((a, b) => a.atMs - b.atMs);
  const out: Window[] = [];
  let open: { fromMs: number; toMs: number } | null = null;
  for (const w of own) {
    if (!w.ok) {
      if (open !== null) out.push(open);
      open = null;
    } else if (open !== null && w.atMs - open.toMs <= maxStepMs) {
      open.toMs = w.atMs;
    } else {
      if (open !== null) out.push(open);
      open = { fromMs: w.atMs, toMs: w.atMs };
    }
  }
  if (open !== null) out.push(open);
  return out;
}

/**
 * The windows in which two database servers acknowledged the probe's writes, on the servers' clock: for
 * every pair of servers (one pair with two nodes, three with three).
 */
export function dualWritable(
  writes: readonly DirectWrite[],
  maxStepMs: number,
  nodes: readonly string[] = dbNodes,
): ServerClockDual {
  const stretches = nodes.map((n) => writableStretches(writes, n, maxStepMs));
  const windows: Window[] = [];
  for (let i = 0; i < stretches.length; i++) {
    for (let j = i + 1; j < stretches.length; j++) {
      for (const x of stretches[i]!) {
        for (const y of stretches[j]!) {
          const fromMs = Math.max(x.fromMs, y.fromMs);
          const toMs = Math.min(x.toMs, y.toMs);
          if (fromMs <= toMs) windows.push({ fromMs, toMs });
        }
      }
    }
  }
  windows.sort((p, q) => p.fromMs - q.fromMs);
  const lengths = windows.map((w) => Math.round(w.toMs - w.fromMs));
  return {
    totalMs: lengths.reduce((s, l) => s + l, 0),
    longestMs: Math.max(0, ...lengths),
    windows,
    writes: writes.length,
  };
}

/** Runs one writer per database host (see the top of this file); started once per lab. */
export class ServerClockWritableProbe {
  static readonly intervalMs = 50;
  readonly #writers: readonly DirectWriter[];
  readonly #nodes: readonly DbNode[];

  private constructor(writers: readonly DirectWriter[], nodes: readonly DbNode[]) {
    this.#writers = writers;
    this.#nodes = nodes;
  }

  /**
   * `primary` gets the probe's table (it replicates). `guardDeadline`: false where the commit guard is
   * not installed (the anchors).
   */
  static async start(
    lab: { readonly topology: Topology; readonly dir: string },
    primary: DbNode,
    options: { readonly guardDeadline?: boolean } = {},
  ): Promise<ServerClockWritableProbe> {
    await createDirectWritesTable(primary);
    // Ids unique across labs and hosts: rows replicate, and a rejoined server keeps the other's.
    const base = Date.now() * 1_000;
    const writers = await Promise.all(
      lab.topology.dbNodes.map((node, i) =>
        DirectWriter.start(lab.topology, lab.dir, {
          host: node,
          targets: [{ node, address: '127.0.0.1' }],
          user: 'postgres',
          intervalMs: ServerClockWritableProbe.intervalMs,
          firstId: base + i * 100_000_000,
          guardDeadline: options.guardDeadline ?? true,
          logName: `writable-probe-${node}`,
        }),
      ),
    );
    return new ServerClockWritableProbe(writers, lab.topology.dbNodes);
  }

  /** The probe's writes sent in [fromMs, toMs]. */
  writes(fromMs: number, toMs: number): DirectWrite[] {
    return this.#writers.flatMap((w) => w.records.filter((r) => r.sentAt >= fromMs && r.sentAt <= toMs));
  }

  /** Two servers writable in [fromMs, toMs], by their own clocks; a gap of 1 s splits a stretch. */
  since(fromMs: number, toMs: number): ServerClockDual {
    return dualWritable(this.writes(fromMs, toMs), 1_000, this.#nodes);
  }

  async stop(): Promise<void> {
    await Promise.all(this.#writers.map((w) => w.stop()));
  }
}
