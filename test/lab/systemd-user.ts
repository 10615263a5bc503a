// A real systemd service manager for the lab's watchdog row, on a machine whose PID 1 is not systemd
// (a container, a microVM): systemd's own binary started as a user manager (`systemd --user`, run by
// root), which implements WatchdogSec=, NotifyAccess=, Restart= and KillMode= with the same service
// code as the system manager. The agent is then started in it as a transient unit with
// `systemd-run --user`, carrying the watchdog settings of deploy/systemd/pgvip-agent.service.
//
// systemd refuses to start a user manager unless the machine was booted with it (it checks for
// /run/systemd/system/). That marker is made in a private mount namespace only (a tmpfs over
// /run/systemd, seen by this manager alone): the machine's own /run stays as it is, so no other
// program on it starts to believe systemd runs.
//
// The notify socket is made world-writable, as the system manager's /run/systemd/notify is: the
// agent runs as postgres and sends WATCHDOG=1 through systemd-notify.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { mustRun, run } from './exec.js';
import { repoRoot } from './ipc.js';
import { waitFor } from './wait.js';

export const systemdBinary = '/lib/systemd/systemd';

/** Why a real systemd manager cannot be started here (null when it can). */
export function systemdUnavailable(): string | null {
  for (const f of [systemdBinary, '/usr/bin/systemd-run', '/usr/bin/systemctl', '/usr/bin/systemd-notify', '/usr/bin/unshare']) {
    if (!existsSync(f)) return `${f} is missing (Debian packages systemd, util-linux)`;
  }
  return null;
}

/** The [Service] settings of the agent's shipped unit that make its watchdog and its restarts. */
export function agentUnitWatchdogProperties(): Record<string, string> {
  const unit = readFileSync(path.join(repoRoot, 'deploy/systemd/pgvip-agent.service'), 'utf8');
  const wanted = ['Type', 'Restart', 'RestartSec', 'WatchdogSec', 'NotifyAccess', 'KillMode', 'KillSignal', 'TimeoutStopSec'];
  const out: Record<string, string> = {};
  for (const line of unit.split('\n')) {
    const m = /^(\w+)=(.*)$/.exec(line.trim());
    if (m !== null && wanted.includes(m[1]!)) out[m[1]!] = m[2]!;
  }
  for (const k of ['WatchdogSec', 'NotifyAccess', 'Restart']) {
    if (out[k] === undefined) throw new Error(`deploy/systemd/pgvip-agent.service sets no ${k}=`);
  }
  return out;
}

export interface UnitSpec {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  /** stdout and stderr are appended here. */
  readonly logFile: string;
  readonly properties: Readonly<Record<string, string>>;
}

export class LabSystemd {
  readonly dir: string;
  readonly pid: number;
  readonly #exitHook: () => void;

  private constructor(dir: string, pid: number) {
    this.dir = dir;
    this.pid = pid;
    // A test process that dies must not leave a manager behind that restarts units into a lab that is gone.
    this.#exitHook = () => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    };
    process.once('exit', this.#exitHook);
  }

  /** Starts a manager whose runtime directory (XDG_RUNTIME_DIR) is under `dir`. */
  static async start(dir: string): Promise<LabSystemd> {
    const runtime = path.join(dir, 'run');
    mkdirSync(runtime, { recursive: true, mode: 0o755 });
    mkdirSync(path.join(dir, 'home'), { recursive: true, mode: 0o700 });
    const script = 'mount -t tmpfs -o mode=755 tmpfs /run/systemd && mkdir /run/systemd/system && exec "$0" --user';
    const log = openSync(path.join(dir, 'systemd.log'), 'a');
    const child = spawn('/usr/bin/unshare', ['--mount', '--propagation', 'slave', '/bin/sh', '-c', script, systemdBinary], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', XDG_RUNTIME_DIR: runtime, HOME: path.join(dir, 'home'), SYSTEMD_LOG_LEVEL: 'notice', SYSTEMD_LOG_TARGET: 'console' },
      detached: true,
      stdio: ['ignore', log, log],
    });
    child.unref();
    const manager = new LabSystemd(dir, child.pid!);
    try {
      const notify = path.join(runtime, 'systemd', 'notify');
      await waitFor('the systemd manager to listen', 20_000, async () => existsSync(path.join(runtime, 'systemd', 'private')) && existsSync(notify), 100,
        () => readFileSync(path.join(dir, 'systemd.log'), 'utf8'));
      chmodSync(path.join(runtime, 'systemd'), 0o755);
      chmodSync(notify, 0o777);
      return manager;
    } catch (err) {
      await manager.close();
      throw err;
    }
  }

  #env(): Record<string, string> {
    return { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', XDG_RUNTIME_DIR: path.join(this.dir, 'run') };
  }

  /** `systemd-run --user --unit <name>`: a transient service with these settings. */
  async run(unit: string, spec: UnitSpec): Promise<void> {
    const props = {
      ...spec.properties,
      WorkingDirectory: spec.cwd,
      StandardOutput: `append:${spec.logFile}`,
      StandardError: `append:${spec.logFile}`,
    };
    await mustRun('/usr/bin/systemd-run', [
      '--user',
      `--unit=${unit}`,
      ...Object.entries(props).map(([k, v]) => `--property=${k}=${v}`),
      ...Object.entries(spec.env).map(([k, v]) => `--setenv=${k}=${v}`),
      '--',
      ...spec.argv,
    ], { env: this.#env(), timeoutMs: 30_000 });
  }

  /** `systemctl --user show`: the unit's properties (MainPID, NRestarts, WatchdogTimestampMonotonic, ...). */
  async show(unit: string, properties: readonly string[]): Promise<Record<string, string>> {
    const out = await mustRun('/usr/bin/systemctl', ['--user', 'show', unit, ...properties.map((p) => `--property=${p}`)], { env: this.#env(), timeoutMs: 15_000 });
    const values: Record<string, string> = {};
    for (const line of out.split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) values[line.slice(0, i)] = line.slice(i + 1);
    }
    return values;
  }

  async stop(unit: string): Promise<void> {
    await run('/usr/bin/systemctl', ['--user', 'stop', unit], { env: this.#env(), timeoutMs: 60_000 });
  }

  /** Ends the manager (SIGTERM, then SIGKILL); its units should be stopped first. */
  async close(): Promise<void> {
    process.removeListener('exit', this.#exitHook);
    const alive = (): boolean => {
      try {
        process.kill(this.pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    if (!alive()) return;
    process.kill(this.pid, 'SIGTERM');
    await waitFor('the systemd manager to exit', 15_000, async () => !alive() || undefined, 100).catch(() => {
      if (alive()) process.kill(this.pid, 'SIGKILL');
    });
  }
}
