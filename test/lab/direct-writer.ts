// The direct writer: a client in the client namespace writing to each database server at its own
// address, not through the VIP (in-netns/direct-writer.ts), and the controller's record of it.
import path from 'node:path';
import { Helper } from './ipc.js';
import { appUser, psql } from './postgres.js';
import { dbNodes, type DbNode, type Topology } from './topology.js';

export interface DirectWrite {
  readonly id: number;
  /** The server the write was sent to (by its own address). */
  readonly target: string;
  /** Wall-clock ms when the write was started, and when its outcome was known. */
  readonly sentAt: number;
  readonly doneAt: number;
  readonly outcome: 'ok' | 'failed';
  /** For ok: the server's cluster_name and timeline. */
  readonly server?: string;
  readonly timeline?: number;
  /** For ok: clock_timestamp() at the INSERT, by the server's own clock (ms since the epoch). */
  readonly writtenAtMs?: number;
  /** For ok: the commit guard's deadline as the server saw it in the same statement (null: never armed). */
  readonly deadlineMs?: number | null;
  readonly error?: string;
}

export interface DirectWriterConfig {
  readonly targets: ReadonlyArray<{ readonly node: DbNode; readonly address: string }>;
  readonly user: string;
  readonly port: number;
  readonly intervalMs: number;
  readonly connectTimeoutMs: number;
  readonly firstId: number;
}

/** The direct writer's table, on the primary (it replicates); the application may insert into it. */
export async function createDirectWritesTable(primary: DbNode): Promise<void> {
  await psql(
    primary,
    'CREATE TABLE IF NOT EXISTS lab.direct_writes (id bigint PRIMARY KEY, target text NOT NULL, ' +
      "server text NOT NULL DEFAULT current_setting('cluster_name'), written_at timestamptz NOT NULL DEFAULT clock_timestamp()); " +
      `GRANT SELECT, INSERT ON lab.direct_writes TO ${appUser};`,
  );
}

export class DirectWriter {
  readonly #helper: Helper;
  readonly records: DirectWrite[] = [];

  private constructor(helper: Helper) {
    this.#helper = helper;
    helper.onEvent((e) => {
      if (e.type === 'records') this.records.push(...(e.records as DirectWrite[]));
    });
  }

  static async start(t: Topology, labDir: string, options: { intervalMs?: number } = {}): Promise<DirectWriter> {
    const config: DirectWriterConfig = {
      targets: dbNodes.map((node) => ({ node, address: t.hosts[node].address })),
      user: appUser,
      port: t.ports.postgres,
      intervalMs: options.intervalMs ?? 100,
      connectTimeoutMs: 1_000,
      firstId: 1_000_000_000,
    };
    const helper = await Helper.start('direct-writer', { host: 'client' }, 'test/lab/in-netns/direct-writer.ts', [JSON.stringify(config)], path.join(labDir, 'logs', 'direct-writer.log'));
    return new DirectWriter(helper);
  }

  stop(): Promise<void> {
    return this.#helper.close(10_000);
  }
}
