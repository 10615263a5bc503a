// Starting and stopping the server with pg_ctl, as the data directory's OS user, with timeouts.
import { open, readFile, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import { PgvipError } from '@pgvip/shared';
import type { ResolvedPostgresConfig } from './config.js';
import { outputTail, runAsOsUser, shellQuote, type OsUser } from './os-command.js';
import type { StopMode } from './port.js';

export interface PgCtlContext {
  readonly config: ResolvedPostgresConfig;
  readonly osUser: OsUser;
}

function pgCtl(ctx: PgCtlContext, args: readonly string[], timeoutMs: number) {
  return runAsOsUser(ctx.osUser, path.join(ctx.config.binDir, 'pg_ctl'), ['-D', ctx.config.dataDir, ...args], {
    // pg_ctl's own -t gives up first and says why; our kill is the backstop.
    timeoutMs: timeoutMs + 5_000,
    cwd: path.dirname(ctx.config.dataDir),
  });
}

/** pg_ctl status: exit 0 = a postmaster runs; 3 = not running; 4 = no usable data directory (also "not running"). */
export async function isPostmasterRunning(ctx: PgCtlContext): Promise<boolean> {
  const result = await pgCtl(ctx, ['status'], ctx.config.timeouts.queryMs);
  return result.exitCode === 0;
}

/**
 * Starts the server and waits until it accepts connections (a standby: once consistent). The port is
 * always passed on the command line: postgresql.conf is copied between nodes by pg_basebackup and
 * pg_rewind, so it must not carry anything node-specific.
 */
export async function startPostmaster(ctx: PgCtlContext): Promise<void> {
  if (await isPostmasterRunning(ctx)) return;
  const { config } = ctx;
  const serverOptions = ['-p', String(config.port), ...config.serverOptions].map(shellQuote).join(' ');
  const seconds = Math.max(1, Math.ceil(config.timeouts.startMs / 1000));
  const result = await pgCtl(ctx, ['start', '-w', '-t', String(seconds), '-l', config.logFile, '-o', serverOptions], config.timeouts.startMs);
  if (result.exitCode !== 0) {
    throw new PgvipError('PGVIP_PG_CTL_FAILED', `pg_ctl start -D ${config.dataDir} failed (${describeExit(result)}): ${outputTail(result)}; server log: ${await logTail(config.logFile)}`);
  }
}

/** Stops the server and waits until it has exited. */
export async function stopPostmaster(
  ctx: PgCtlContext,
  mode: StopMode,
  timeoutMs = ctx.config.timeouts.stopMs,
): Promise<void> {
  const startedAt = performance.now();
  // A stop is in the write gap of a switchover (its fence) and of a rejoin. pg_ctl costs a process
  // start (tens of ms on a busy host) and looks every 100 ms whether the server is gone. With the
  // postmaster's pid known (postmaster.pid, a live process working in the data directory) the
  // agent, which runs as the server's OS user or root, sends pg_ctl's signal itself and watches
  // every 10 ms.
  const pid = await postmasterPid(ctx.config.dataDir);
  const ours = pid !== null && (await isPostmaster(pid, ctx.config.dataDir));
  const signalled = ours && signalPostmaster(pid, stopSignals[mode]);
  if (!signalled) {
    if (!(await isPostmasterRunning(ctx))) return;
    const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
    const args = pid === null ? ['stop', '-m', mode, '-w', '-t', String(seconds)] : ['stop', '-m', mode, '-W'];
    const result = await pgCtl(ctx, args, timeoutMs);
    if (result.exitCode !== 0 && (await isPostmasterRunning(ctx))) {
      throw new PgvipError('PGVIP_PG_CTL_FAILED', `pg_ctl stop -m ${mode} -D ${ctx.config.dataDir} failed (${describeExit(result)}): ${outputTail(result)}`);
    }
  }
  if (pid === null) return;
  // Gone once postmaster.pid is (the postmaster removes it as it exits, which is what pg_ctl -w waits
  // for); the process itself may linger as a zombie until whoever inherited it reaps it.
  while (processAlive(pid) && (await postmasterPid(ctx.config.dataDir)) === pid) {
    if (performance.now() - startedAt > timeoutMs) {
      throw new PgvipError('PGVIP_PG_CTL_FAILED', `pg_ctl stop -m ${mode} -D ${ctx.config.dataDir}: the postmaster (pid ${pid}) still runs after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The postmaster's pid from postmaster.pid (its first line), or null when it cannot be read. */
async function postmasterPid(dataDir: string): Promise<number | null> {
  try {
    const first = (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0] ?? '';
    const pid = Number(first.trim());
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

/** The signal of each shutdown mode, as pg_ctl sends it. */
const stopSignals: Readonly<Record<StopMode, NodeJS.Signals>> = { smart: 'SIGTERM', fast: 'SIGINT', immediate: 'SIGQUIT' };

/**
 * Whether `pid` is this data directory's postmaster, not a stale postmaster.pid's pid reused by
 * another process: a postmaster's working directory is its data directory (it changes to it at start).
 */
async function isPostmaster(pid: number, dataDir: string): Promise<boolean> {
  try {
    const [cwd, dir] = await Promise.all([readlink(`/proc/${pid}/cwd`), realpath(dataDir)]);
    return cwd === dir;
  } catch {
    return false;
  }
}

/** Sends `signal` to the postmaster; false when it may not (another user) or is gone. */
function signalPostmaster(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Whether a process with this pid exists (EPERM: it exists, owned by another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Stops for good: fast (clean shutdown checkpoint, which pg_rewind wants), then immediate when fast
 * does not finish in time (e.g. the shutdown checkpoint hangs on a stalled disk).
 */
export async function stopPostmasterEscalating(ctx: PgCtlContext): Promise<void> {
  try {
    await stopPostmaster(ctx, 'fast');
  } catch {
    await stopPostmaster(ctx, 'immediate');
  }
}

function describeExit(result: { exitCode: number | null; signal: string | null; timedOut: boolean }): string {
  if (result.timedOut) return 'timed out';
  return result.signal ? `signal ${result.signal}` : `exit ${result.exitCode}`;
}

/** The last lines of the server log, for error details (the reason a start failed is only written there). */
async function logTail(logFile: string, maxBytes = 2_048): Promise<string> {
  try {
    const handle = await open(logFile, 'r');
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, maxBytes);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return buffer.toString('utf8').trim().split('\n').slice(-5).join(' | ');
    } finally {
      await handle.close();
    }
  } catch {
    return '(no server log)';
  }
}
