// The direct writer: a client in the client namespace writing to each database server at its own
// address, not through the VIP (in-netns/direct-writer.ts), and the controller's record of it.
import path from 'node:path';
import { Helper } from './ipc.js';
import { appUser, psql } from './postgres.js';
import { dbNodes, type DbNode, type HostName, type Topology } from './topology.js';

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
  /** Read the commit guard's deadline with each write (false where the guard is not installed, e.g. an anchor). */
  readonly guardDeadline?: boolean;
}

export interface DirectWriterOptions {
  readonly intervalMs?: number;
  /** Where the writer runs (default: the client host) and whom it writes to (default: each server at its address). */
  readonly host?: HostName;
  readonly targets?: DirectWriterConfig['targets'];
  readonly user?: string;
  readonly firstId?: number;
  readonly guardDeadline?: boolean;
  readonly logName?: string;
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

  static async start(t: Topology, labDir: string, options: DirectWriterOptions = {}): Promise<DirectWriter> {
    const config: DirectWriterConfig = {
      targets: options.targets ?? dbNodes.map((node) => ({ node, address: t.hosts[node].address })),
      user: options.user ?? appUser,
      port: t.ports.postgres,
      intervalMs: options.intervalMs ?? 100,
      connectTimeoutMs: 1_000,
      firstId: options.firstId ?? 1_000_000_000,
      guardDeadline: options.guardDeadline ?? true,
    };
    const name = options.logName ?? 'direct-writer';
    const where = { host: options.host ?? 'client' };
    const log = path.join(labDir, 'logs', `${name}.log`);
    const helper = await Helper.start(name, where, 'test/lab/in-netns/direct-writer.ts', [JSON.stringify(config)], log);
    return new DirectWriter(helper);
  }

  stop(): Promise<void> {
    return this.#helper.close(10_000);
  }
}
