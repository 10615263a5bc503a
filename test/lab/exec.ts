// Running commands for the lab: on the machine, or "on a host" (inside its network namespace, in
// its freezer cgroup, as a given user). Every command has a timeout that kills its process group.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { nsOf, type HostName } from './topology.js';

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

export interface RunOptions {
  readonly timeoutMs?: number;
  readonly input?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

const baseEnv = (): Record<string, string> => ({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', LC_ALL: 'C' });

/** Runs `file args`; resolves with the outcome, never rejects for a failing command. */
export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const child = spawn(file, [...args], {
    detached: true,
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    env: { ...baseEnv(), ...options.env },
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  if (options.input !== undefined) child.stdin?.end(options.input);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child.pid);
  }, timeoutMs);
  return new Promise((resolve) => {
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stdout, stderr: `${stderr}${err.message}`, timedOut });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly result: RunResult,
  ) {
    const why = result.timedOut ? 'timed out' : result.signal ? `killed by ${result.signal}` : `exit ${result.code}`;
    super(`${command} failed (${why}): ${(result.stderr.trim() || result.stdout.trim()).slice(-2_000)}`);
    this.name = 'CommandError';
  }
}

/** Runs a command and returns its stdout; throws CommandError unless it exits 0. */
export async function mustRun(file: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const result = await run(file, args, options);
  if (result.code !== 0) throw new CommandError([file, ...args].join(' '), result);
  return result.stdout;
}

/** Synchronous variant for exit hooks (where nothing asynchronous runs any more). */
export function runSync(
  file: string,
  args: readonly string[],
  timeoutMs = 10_000,
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(file, [...args], { encoding: 'utf8', timeout: timeoutMs, env: baseEnv() });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

// --- users ----------------------------------------------------------------------------------------

export interface OsUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

const users = new Map<string, OsUser>();

export function osUser(name: string): OsUser {
  const known = users.get(name);
  if (known) return known;
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
  const f = line?.split(':') ?? [];
  if (f.length < 7) throw new Error(`the lab needs the OS user ${name}${name === 'postgres' ? ' (Debian package postgresql-15)' : ''}`);
  const user = { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '/' };
  users.set(name, user);
  return user;
}

// --- "on a host" -----------------------------------------------------------------------------------

export interface HostExecOptions {
  /** Run as this OS user (default root). */
  readonly user?: string;
  /** Capabilities kept across the switch to `user` (ambient), e.g. ['net_admin'] for the agent's `ip addr`. */
  readonly caps?: readonly string[];
  /** Join the host's freezer cgroup, so a host freeze stops this process too (default true). */
  readonly cgroup?: boolean;
}

export function freezerCgroupOf(host: HostName): string {
  return `/sys/fs/cgroup/freezer/${nsOf(host)}`;
}

/**
 * The argv that runs `argv` on `host`: a small shell joins the host's freezer cgroup (so children
 * such as pg_ctl's postmaster stay in it), `ip netns exec` enters the host's network namespace, and
 * setpriv drops to the user, keeping only the named capabilities (as the systemd units do).
 */
export function onHost(host: HostName, argv: readonly string[], options: HostExecOptions = {}): string[] {
  const user = options.user ?? 'root';
  const drop =
    user === 'root'
      ? []
      : ['/usr/bin/setpriv', `--reuid=${osUser(user).uid}`, `--regid=${osUser(user).gid}`, '--init-groups', ...(options.caps?.length ? [`--inh-caps=${options.caps.map((c) => `+${c}`).join(',')}`, `--ambient-caps=${options.caps.map((c) => `+${c}`).join(',')}`] : []), '--'];
  const joinCgroup = options.cgroup ?? true;
  // The cgroup is joined BEFORE entering the namespace: `ip netns exec` mounts a fresh /sys, in which
  // the cgroup hierarchies are not mounted. $0 is the cgroup.procs file, "$@" the rest; each step
  // execs the next, so the pid we spawn IS the command in the end.
  const shell = joinCgroup ? ['/bin/sh', '-c', 'echo $$ > "$0" && exec "$@"', `${freezerCgroupOf(host)}/cgroup.procs`] : [];
  return [...shell, 'ip', 'netns', 'exec', nsOf(host), ...drop, ...argv];
}

/** Runs a command on a host and returns its stdout; throws unless it exits 0. */
export function mustRunOnHost(
  host: HostName,
  argv: readonly string[],
  options: HostExecOptions & RunOptions = {},
): Promise<string> {
  const [file, ...args] = onHost(host, argv, options);
  return mustRun(file!, args, options);
}

export function runOnHost(
  host: HostName,
  argv: readonly string[],
  options: HostExecOptions & RunOptions = {},
): Promise<RunResult> {
  const [file, ...args] = onHost(host, argv, options);
  return run(file!, args, options);
}
