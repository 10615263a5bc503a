// Short-lived, hard-bounded SQL sessions.
//
// Most calls get a fresh connection: the agent talks to its server a few times per heartbeat, and
// a local connection costs about a millisecond. In exchange nothing survives a call: no half-open
// socket to a stalled or restarted server to detect, no session state that a promotion, a restart
// or our own pg_terminate_backend sweep could have changed behind our back, and concurrent calls
// cannot queue behind each other. The two statements of every heartbeat (observation, write probe)
// use a KeptSession instead, which keeps those properties at a tenth of the cost (see below). (The
// agent must connect as a superuser, so the superuser_reserved_connections slots keep it working
// even when clients exhaust max_connections.)
//
// Four bounds, because each catches a different fault:
// - a connect timer: a stopped (SIGSTOP) or overloaded postmaster accepts the TCP connection into its
//   backlog but never answers the startup packet;
// - statement_timeout sent in the startup packet: the server cancels a statement itself and releases
//   its locks, even if the agent dies meanwhile;
// - a cancel request shortly before the deadline: PostgreSQL switches statement_timeout off before
//   the actual commit, so a COMMIT waiting for a synchronous standby that is gone waits forever, and
//   so would its backend after we hang up. A cancel ends that wait (the commit stays local, with a
//   warning the caller can recognise) and leaves no stuck backend behind;
// - a client-side deadline that destroys the socket: a stalled server answers nothing at all.
import { connect as connectSocket, type Socket } from 'node:net';
import pg from 'pg';
import { PgvipError, isPgvipError } from '@pgvip/shared';
import type { PgEndpoint } from './port.js';

export interface SqlSession {
  /**
   * Runs one statement (or a ;-separated simple query when params is absent) and returns its rows as
   * typed by the caller's SELECT.
   */
  query<Row extends object>(sql: string, params?: readonly unknown[]): Promise<Row[]>;
  /** Messages of NOTICE/WARNING responses received so far, in order (lc_messages is C, so they are English). */
  readonly notices: readonly string[];
  /** Milliseconds left before the session deadline. */
  remainingMs(): number;
}

export interface SessionBounds {
  /** The whole call, connect included. */
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
}

/** Opens a session, runs `work`, closes it; every failure becomes a PgvipError with a PGVIP_PG_* code. */
export async function withSession<T>(
  endpoint: PgEndpoint,
  bounds: SessionBounds,
  work: (session: SqlSession) => Promise<T>,
): Promise<T> {
  const connection = openConnection(endpoint, bounds.timeoutMs);
  try {
    return await runBounded(connection, bounds, work);
  } finally {
    connection.close();
  }
}

/**
 * One connection kept open between calls, for the statements the agent runs every heartbeat (the
 * observation and the write probe). A fresh session costs the agent ~1 ms of CPU (TCP, startup
 * packet, authentication, a backend fork on the server) against ~0.1 ms for a statement on an open
 * one; at four a second that is most of an otherwise idle agent's CPU.
 *
 * What a fresh session gave for free is kept: every call has the same four bounds; a connection
 * is reused only after a call that succeeded, so no failed or cancelled transaction, stalled socket
 * or unknown state is ever carried into the next call; a concurrent call gets a fresh session of its
 * own instead of queueing. What is new is a connection that died while idle — a restart, our own
 * fence's pg_terminate_backend sweep, idle_session_timeout — and that must not read as a failed
 * observation or write probe (a failed probe starts the fast path): a call that fails on a reused
 * connection because the connection is gone is run once more on a fresh one, within the same
 * deadline, and that answer counts.
 *
 * Session settings that matter are fixed at connect time (statement_timeout and lc_messages in the
 * startup packet) or per transaction (SET LOCAL); a reloaded server setting, such as the fence's
 * default_transaction_read_only, reaches an open session before its next statement.
 */
export class KeptSession {
  readonly #endpoint: PgEndpoint;
  readonly #statementTimeoutMs: number;
  #idle: Connection | null = null;
  #busy = false;
  #closed = false;

  /** statementTimeoutMs goes into the startup packet: use it for calls whose bound is always the same. */
  constructor(endpoint: PgEndpoint, statementTimeoutMs: number) {
    this.#endpoint = endpoint;
    this.#statementTimeoutMs = statementTimeoutMs;
  }

  async run<T>(bounds: SessionBounds, work: (session: SqlSession) => Promise<T>): Promise<T> {
    if (this.#busy || this.#closed) return withSession(this.#endpoint, bounds, work);
    this.#busy = true;
    const startedAt = performance.now();
    try {
      let reused = this.#idle;
      this.#idle = null;
      if (reused?.gone === true) {
        reused.close();
        reused = null;
      }
      if (reused !== null) {
        try {
          return await this.#runAndKeep(reused, bounds, work);
        } catch (err) {
          const again = freshAttemptBounds(err, bounds, startedAt);
          if (again === null) throw err;
          bounds = again;
        }
      }
      return await this.#runAndKeep(openConnection(this.#endpoint, this.#statementTimeoutMs), bounds, work);
    } finally {
      this.#busy = false;
    }
  }

  /** Closes the kept connection; later calls each get a fresh session. */
  close(): void {
    this.#closed = true;
    this.#idle?.close();
    this.#idle = null;
  }

  async #runAndKeep<T>(
    connection: Connection,
    bounds: SessionBounds,
    work: (session: SqlSession) => Promise<T>,
  ): Promise<T> {
    let value: T;
    try {
      value = await runBounded(connection, bounds, work);
    } catch (err) {
      connection.close();
      throw err;
    }
    if (this.#closed || connection.gone) connection.close();
    else this.#idle = connection;
    return value;
  }
}

/**
 * Sessions connected ahead of the call that uses them, for the agent's effects (a promotion's steps,
 * a fence, a sync setting). A fresh session costs a TCP connect, authentication and a backend fork:
 * 15 to 120 ms on a loaded two-core host, and each step of a failover's promotion (stop the WAL
 * receiver, clear the sync setting, create the peer's slot, promote) opened one inside the write gap.
 *
 * Nothing else changes: each call still gets a session no call used before, so nothing survives a
 * call (withSession's properties); it was only connected earlier. The next spare starts connecting
 * when one is taken, beside the call's work, so a pipeline of steps finds one ready at each step; a
 * spare not connected yet is left to finish and the call opens its own. statement_timeout, which a
 * fresh session sends in its startup packet, is SET as the call's first statement. A spare the
 * server dropped while it waited (a restart, our own fence's sweep, idle_session_timeout) fails that
 * first statement; the call then runs on a fresh session within the same deadline. Its work never
 * runs twice: a failure once the work has started is the call's answer.
 */
export class SpareSessions {
  readonly #endpoint: PgEndpoint;
  readonly #connectTimeoutMs: number;
  #spare: Connection | null = null;
  #closed = false;

  constructor(endpoint: PgEndpoint, connectTimeoutMs: number) {
    this.#endpoint = endpoint;
    this.#connectTimeoutMs = connectTimeoutMs;
  }

  async run<T>(bounds: SessionBounds, work: (session: SqlSession) => Promise<T>): Promise<T> {
    const startedAt = performance.now();
    const spare = this.#take();
    this.prepare();
    if (spare !== null) {
      let workStarted = false;
      const timeoutMs = Math.max(1, Math.floor(bounds.timeoutMs));
      try {
        // The SET stands where a fresh session's connect would: under the connect bound, so a stalled
        // server fails the call as soon as it would have without the spare.
        return await runBounded(spare, bounds, (s) => {
          workStarted = true;
          return work(s);
        }, `SET statement_timeout = ${timeoutMs}`);
      } catch (err) {
        const again = workStarted ? null : freshAttemptBounds(err, bounds, startedAt);
        if (again === null) throw err;
        bounds = again;
      } finally {
        spare.close();
      }
    }
    return withSession(this.#endpoint, bounds, work);
  }

  /** Closes the spare (daemon shutdown); later calls each get a fresh session. */
  close(): void {
    this.#closed = true;
    this.#spare?.close();
    this.#spare = null;
  }

  /** The spare when it is connected and not dropped; null otherwise (one still connecting stays). */
  #take(): Connection | null {
    const spare = this.#spare;
    if (spare === null || !spare.connected) return null;
    this.#spare = null;
    if (!spare.gone) return spare;
    spare.close();
    return null;
  }

  /**
   * Starts connecting the next spare unless one is there or connecting; a failure leaves none. Each
   * call takes one and starts the next; the agent also asks after each look that reached the server,
   * so the first effect after a start or a restart of PostgreSQL finds one too.
   */
  prepare(): void {
    if (this.#closed || this.#spare !== null) return;
    // The startup packet's statement_timeout only stands until the call's SET.
    const connection = openConnection(this.#endpoint, this.#connectTimeoutMs);
    this.#spare = connection;
    const giveUp = setTimeout(() => connection.destroy(), this.#connectTimeoutMs);
    giveUp.unref();
    connection.client.connect().then(
      () => {
        clearTimeout(giveUp);
        (connection.client.connection.stream as Socket).unref();
        connection.connected = true;
        if (this.#closed || this.#spare !== connection) connection.close();
      },
      () => {
        clearTimeout(giveUp);
        connection.close();
        if (this.#spare === connection) this.#spare = null;
      },
    );
  }
}

/**
 * After a call on an open connection failed because that connection is gone (the server dropped it
 * while it sat idle): the bounds for running it once more on a fresh session, within what is left of
 * the same deadline; null when the failure was another or no time is left.
 */
function freshAttemptBounds(err: unknown, bounds: SessionBounds, startedAt: number): SessionBounds | null {
  const leftMs = bounds.timeoutMs - (performance.now() - startedAt);
  if (!(isPgvipError(err) && err.code === 'PGVIP_PG_UNREACHABLE') || leftMs < 1) return null;
  return { timeoutMs: leftMs, connectTimeoutMs: Math.min(bounds.connectTimeoutMs, leftMs) };
}

/** A pg.Client with what the bounds need around it. */
interface Connection {
  readonly client: pg.Client;
  readonly endpoint: PgEndpoint;
  /** NOTICE/WARNING messages of the current call. */
  notices: string[];
  connected: boolean;
  /** The socket ended or failed: never reuse it. */
  readonly gone: boolean;
  /** Politely if it still talks, at once otherwise; idempotent. */
  close(): void;
  /** Cuts the socket now. */
  destroy(): void;
}

function openConnection(endpoint: PgEndpoint, statementTimeoutMs: number): Connection {
  const client = new pg.Client({
    host: endpoint.host,
    port: endpoint.port,
    user: endpoint.user,
    database: endpoint.database,
    password: endpoint.password,
    application_name: 'pgvip-agent',
    statement_timeout: Math.max(1, Math.floor(statementTimeoutMs)),
    // English messages whatever the server's locale: the write probe recognises one warning by its text.
    options: '-c lc_messages=C',
  });
  let gone = false;
  let closed = false;
  const connection: Connection = {
    client,
    endpoint,
    notices: [],
    connected: false,
    get gone() {
      return gone;
    },
    close() {
      if (closed) return;
      closed = true;
      closeQuietly(client, gone);
    },
    destroy() {
      gone = true;
      client.connection.stream.destroy();
    },
  };
  client.on('notice', (notice) => connection.notices.push(notice.message ?? ''));
  // A socket error on an idle client is emitted as 'error'; the pending call (if any) already rejects
  // with it, and without a listener Node would crash the agent.
  client.on('error', () => {
    gone = true;
  });
  client.on('end', () => {
    gone = true;
  });
  return connection;
}

/** Runs `work` on `connection` (connecting it first when needed) within the four bounds. */
async function runBounded<T>(
  connection: Connection,
  bounds: SessionBounds,
  work: (session: SqlSession) => Promise<T>,
  /** Run before `work` under the connect bound, as the connect itself is (a spare's SET). */
  prelude?: string,
): Promise<T> {
  const { client, endpoint } = connection;
  const startedAt = performance.now();
  const timeoutMs = Math.max(1, Math.floor(bounds.timeoutMs));
  connection.notices = [];
  const notices = connection.notices;

  let cancelSent = false;
  const cancelRunningStatement = (): void => {
    const key = client as unknown as BackendKey;
    if (!connection.connected || cancelSent || key.processID === null || key.secretKey === null) return;
    cancelSent = true;
    sendCancelRequest(endpoint, key.processID, key.secretKey);
  };
  let abortedBy: 'connect' | 'deadline' | null = null;
  const abort = (why: 'connect' | 'deadline'): void => {
    if (abortedBy !== null) return;
    abortedBy = why;
    cancelRunningStatement();
    connection.destroy();
  };
  const deadlineTimer = setTimeout(() => abort('deadline'), timeoutMs);
  const cancelTimer = setTimeout(cancelRunningStatement, timeoutMs - cancelLeadMs(timeoutMs));
  const where = `${endpoint.host}:${endpoint.port}`;

  const session: SqlSession = {
    async query<Row extends object>(sql: string, params?: readonly unknown[]): Promise<Row[]> {
      const result = params === undefined ? await client.query(sql) : await client.query(sql, [...params]);
      // A multi-statement simple query yields one result per statement; callers want the last one.
      const last = Array.isArray(result) ? (result.at(-1) as pg.QueryResult | undefined) : result;
      return (last?.rows ?? []) as Row[];
    },
    notices,
    remainingMs: () => timeoutMs - (performance.now() - startedAt),
  };

  try {
    if (!connection.connected || prelude !== undefined) {
      const connectTimer = setTimeout(() => abort('connect'), Math.min(bounds.connectTimeoutMs, timeoutMs));
      try {
        if (!connection.connected) {
          await client.connect();
          connection.connected = true;
          // A kept connection must not hold the process open when the daemon exits.
          (client.connection.stream as Socket).unref();
        }
        if (prelude !== undefined) await client.query(prelude);
      } finally {
        clearTimeout(connectTimer);
      }
    }
    return await work(session);
  } catch (err) {
    throw toPgvipError(err, abortedBy, where, timeoutMs, bounds.connectTimeoutMs);
  } finally {
    clearTimeout(deadlineTimer);
    clearTimeout(cancelTimer);
  }
}

/**
 * How long before the deadline the running statement is cancelled: long enough for a live server to
 * answer the cancel (and say why it was slow), short next to the bound.
 */
export function cancelLeadMs(timeoutMs: number): number {
  return Math.min(100, Math.floor(timeoutMs / 5));
}

/** pg.Client learns these from BackendKeyData; @types/pg does not declare them. */
interface BackendKey {
  readonly processID: number | null;
  readonly secretKey: number | null;
}

/** Protocol code of a CancelRequest (1234 << 16 | 5678). */
const cancelRequestCode = 80877102;

/**
 * Sends PostgreSQL's CancelRequest on a separate connection, as libpq's PQcancel does. Fire and
 * forget: the answer to a cancel is the cancelled statement's own result on the session.
 */
function sendCancelRequest(endpoint: PgEndpoint, processId: number, secretKey: number): void {
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(cancelRequestCode, 4);
  packet.writeInt32BE(processId, 8);
  packet.writeInt32BE(secretKey, 12);
  const socket = endpoint.host.startsWith('/')
    ? connectSocket({ path: `${endpoint.host}/.s.PGSQL.${endpoint.port}` })
    : connectSocket({ host: endpoint.host, port: endpoint.port });
  const giveUp = setTimeout(() => socket.destroy(), 1_000);
  giveUp.unref();
  socket.once('connect', () => socket.end(packet));
  socket.once('close', () => clearTimeout(giveUp));
  socket.on('error', () => undefined); // a server that cannot take a cancel is one the deadline handles
}

/** Ends the session politely when the server still talks, without making the caller wait for it. */
function closeQuietly(client: pg.Client, alreadyDestroyed: boolean): void {
  if (alreadyDestroyed) return;
  const stream = client.connection.stream;
  const forceTimer = setTimeout(() => stream.destroy(), 1_000);
  forceTimer.unref();
  client.end().then(
    () => clearTimeout(forceTimer),
    () => clearTimeout(forceTimer),
  );
}

const unreachableSocketErrors = new Set(['ECONNREFUSED', 'ENOENT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EADDRNOTAVAIL']);

/**
 * SQLSTATEs that mean "the server is going away or not there yet": 57P01 admin_shutdown (also our
 * own pg_terminate_backend), 57P02 crash_shutdown, 57P03 cannot_connect_now (starting, shutting down,
 * not yet consistent), class 08 connection exceptions.
 */
function isServerGoneState(sqlState: string): boolean {
  return sqlState === '57P01' || sqlState === '57P02' || sqlState === '57P03' || sqlState.startsWith('08');
}

function toPgvipError(err: unknown, abortedBy: 'connect' | 'deadline' | null, where: string, timeoutMs: number, connectTimeoutMs: number): PgvipError {
  if (isPgvipError(err)) return err;
  if (abortedBy === 'connect') {
    return new PgvipError('PGVIP_PG_TIMEOUT', `${where} accepted no session within ${Math.min(connectTimeoutMs, timeoutMs)} ms`, { cause: err });
  }
  if (abortedBy === 'deadline') {
    return new PgvipError('PGVIP_PG_TIMEOUT', `${where} did not answer within ${timeoutMs} ms`, { cause: err });
  }
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof code === 'string' && unreachableSocketErrors.has(code)) {
    return new PgvipError('PGVIP_PG_UNREACHABLE', `${where}: ${message}`, { cause: err });
  }
  if (err instanceof pg.DatabaseError && typeof code === 'string') {
    if (code === '57014') return new PgvipError('PGVIP_PG_TIMEOUT', `${where}: ${message} (statement_timeout ${timeoutMs} ms)`, { cause: err });
    if (code === '25006') return new PgvipError('PGVIP_PG_READ_ONLY', `${where}: ${message}`, { cause: err });
    if (isServerGoneState(code)) return new PgvipError('PGVIP_PG_UNREACHABLE', `${where}: ${message} (SQLSTATE ${code})`, { cause: err });
    return new PgvipError('PGVIP_PG_QUERY_FAILED', `${where}: ${message} (SQLSTATE ${code})`, { cause: err });
  }
  // pg.Client's own words for a socket that already closed under it ("Client has encountered a
  // connection error and is not queryable", "Client was closed and is not queryable").
  if (/Connection terminated|is not queryable/i.test(message)) {
    return new PgvipError('PGVIP_PG_UNREACHABLE', `${where}: the server closed the connection`, { cause: err });
  }
  return new PgvipError('PGVIP_PG_QUERY_FAILED', `${where}: ${message}`, { cause: err });
}

/**
 * Re-runs `check` until it returns a value, within the session's deadline; then PGVIP_PG_TIMEOUT naming `what`.
 * The last check must end before the session cancels its statement (cancelLeadMs before the deadline):
 * one cut off there ends in a plain "did not answer", which says nothing of what was waited for. So
 * it gives up once the next round would not leave that lead plus twice the last check's time.
 */
export async function pollInSession<T>(
  session: SqlSession,
  what: string,
  check: () => Promise<T | undefined>,
  intervalMs = 20,
): Promise<T> {
  for (;;) {
    const checkStartedAt = performance.now();
    const value = await check();
    if (value !== undefined) return value;
    const reserveMs = pollCancelReserveMs + 2 * (performance.now() - checkStartedAt);
    if (session.remainingMs() < intervalMs + reserveMs) throw new PgvipError('PGVIP_PG_TIMEOUT', `gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** cancelLeadMs's largest value: a check started later than this before the deadline may be cancelled. */
const pollCancelReserveMs = 100;

/** A string literal for SQL text where parameters are not allowed (ALTER SYSTEM, multi-statement queries). */
export function sqlLiteral(value: string): string {
  return pg.escapeLiteral(value);
}
