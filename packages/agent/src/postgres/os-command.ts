// Running PostgreSQL's tools (pg_ctl, pg_rewind, pg_basebackup) as the OS user that owns the data
// directory, with a timeout that kills the whole process group.
//
// PostgreSQL refuses to run as root, and files it creates must belong to its user. When the agent
// runs as root we spawn with that user's uid/gid (libuv also drops root's supplementary groups);
// when it already runs as that user we spawn directly.
//
// Every program started here runs without the agent's ambient capabilities (CAP_NET_ADMIN, for
// `ip addr`): ambient capabilities survive execve, so a postmaster started by pg_ctl would hold
// them, and so would every backend, COPY ... PROGRAM and untrusted-language function.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { withoutCapabilities } from '../hooks/capabilities.js';

const execFileAsync = promisify(execFile);

export interface OsUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

const osUsers = new Map<string, Promise<OsUser>>();

/** Looks the user up through NSS (getent), so LDAP/SSSD users work as well as /etc/passwd ones. Cached. */
export function lookUpOsUser(name: string): Promise<OsUser> {
  let found = osUsers.get(name);
  if (!found) {
    found = execFileAsync('getent', ['passwd', name], { timeout: 5_000 }).then(({ stdout }) => {
      const fields = stdout.trim().split(':');
      const uid = Number(fields[2]);
      const gid = Number(fields[3]);
      if (fields.length < 7 || !Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error(`unexpected getent output for ${name}: ${stdout}`);
      return { name, uid, gid, home: fields[5] ?? '/' };
    });
    found.catch(() => osUsers.delete(name));
    osUsers.set(name, found);
  }
  return found;
}

export interface CommandResult {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
}

export interface CommandOptions {
  readonly timeoutMs: number;
  readonly cwd: string;
  readonly env?: Readonly<Record<string, string>>;
  /**
   * 'required': do not run (the result says why, with no exit code) when the capabilities cannot be
   * dropped (no setpriv): an operator's program (the re-seed command) must not run with them, and the preflight
   * refuses such a config on a host without setpriv. 'when-possible' (the default, PostgreSQL's own
   * tools): run with them as before rather than leave the node without its server.
   */
  readonly dropCapabilities?: 'required' | 'when-possible';
}

const outputLimitChars = 64 * 1024;

/** How long output may still arrive after the program exited (a process it left running may hold the pipe). */
const drainAfterExitMs = 200;

/** Runs `file args` as `user`; resolves with the outcome (never rejects for a non-zero exit). */
export async function runAsOsUser(
  user: OsUser,
  file: string,
  args: readonly string[],
  options: CommandOptions,
): Promise<CommandResult> {
  const startedAt = performance.now();
  const dropPrivileges = process.getuid?.() === 0 && user.uid !== 0;
  const unprivileged = withoutCapabilities([file, ...args]);
  if (!unprivileged.ok && options.dropCapabilities === 'required') {
    return { exitCode: null, signal: null, timedOut: false, stdout: '', stderr: `not started: ${unprivileged.why}`, durationMs: 0 };
  }
  const [program, ...argv] = unprivileged.ok ? unprivileged.argv : [file, ...args];
  const child = spawn(program!, argv, {
    cwd: options.cwd,
    // Its own process group, so a timeout can kill pg_basebackup and anything it started.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: user.home, LANG: 'C', LC_ALL: 'C', ...options.env },
    ...(dropPrivileges ? { uid: user.uid, gid: user.gid } : {}),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout = (stdout + chunk.toString()).slice(-outputLimitChars)));
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-outputLimitChars)));

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child.pid);
  }, options.timeoutMs);

  return new Promise<CommandResult>((resolve) => {
    let settled = false;
    let drain: NodeJS.Timeout | undefined;
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drain);
      resolve({ exitCode, signal, timedOut, stdout, stderr: spawnError ? `${stderr}${spawnError.message}` : stderr, durationMs: performance.now() - startedAt });
    };
    child.once('error', (err) => finish(null, null, err));
    child.once('close', (code, signal) => finish(code, signal));
    // The program has exited, but something it started may still hold its output open: a daemon in a
    // session of its own (setsid), which the group kill does not reach either. Waiting for the pipes
    // to close waited for that daemon, past any timeout; read a moment longer, then stop reading.
    child.once('exit', (code, signal) => {
      drain = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(code, signal);
      }, drainAfterExitMs);
    });
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** The last lines of a command's output, for error details. */
export function outputTail(result: CommandResult, lines = 8): string {
  return `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-lines).join(' | ');
}

/** Quotes one word for /bin/sh (pg_ctl hands its -o string to the shell). */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./=:,+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
