// A small service manager for the lab's daemons, doing what systemd does for them in production:
// start on a host (namespace + cgroup + user), append stdout/stderr to a log file, and restart after
// any exit, one second later (Restart=always, RestartSec=1). Faults use kill9() (the daemon dies and
// comes back), stop() (gone for good, like `systemctl stop`) and start() again.
import { appendFileSync } from 'node:fs';
import { onHost, type HostExecOptions } from './exec.js';
import { repoRoot } from './ipc.js';
import type { Reaper } from './reaper.js';
import type { HostName } from './topology.js';

export interface ServiceSpec {
  /** Spawns the process and reaps its orphans (a postmaster the daemon started), as systemd would. */
  readonly reaper: Reaper;
  /** e.g. "agent db-a", "witness", "baseline db-b". */
  readonly name: string;
  readonly host: HostName;
  readonly argv: readonly string[];
  readonly run?: HostExecOptions;
  readonly env?: Readonly<Record<string, string>>;
  readonly logFile: string;
  /** Working directory (default the checkout; the daemons get the lab's runtime copy, see runtime.ts). */
  readonly cwd?: string;
  /** Delay before a restart (default 1000 ms, systemd's RestartSec=1 in deploy/systemd). */
  readonly restartDelayMs?: number;
  /** Restart after an exit (default true). */
  readonly restart?: boolean;
}

export class Service {
  readonly spec: ServiceSpec;
  #pid: number | null = null;
  #starting: Promise<void> | null = null;
  #wanted = false;
  #restartTimer: NodeJS.Timeout | null = null;
  #exitWaiters: Array<() => void> = [];
  /** How many times a process of this service was started. */
  starts = 0;

  constructor(spec: ServiceSpec) {
    this.spec = spec;
  }

  get name(): string {
    return this.spec.name;
  }

  /** The running process's pid (the daemon itself: the cgroup shell, `ip netns exec` and setpriv exec into it). */
  get pid(): number | null {
    return this.#pid;
  }

  get running(): boolean {
    return this.#pid !== null || this.#starting !== null;
  }

  #note(line: string): void {
    try {
      appendFileSync(this.spec.logFile, `${JSON.stringify({ time: Date.now(), lab: 'supervisor', msg: line })}\n`);
    } catch {
      // the lab dir is being removed
    }
  }

  /** Starts the service (and keeps it running); a no-op when it runs. */
  start(): void {
    this.#wanted = true;
    if (this.#pid !== null || this.#starting !== null || this.#restartTimer !== null) return;
    this.#spawn();
  }

  #spawn(): void {
    const argv = onHost(this.spec.host, this.spec.argv, this.spec.run);
    const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...this.spec.env };
    this.#starting = this.spec.reaper.spawn(argv, { env, log: this.spec.logFile, cwd: this.spec.cwd ?? repoRoot }).then(
      (pid) => {
        this.#starting = null;
        this.#pid = pid;
        this.starts += 1;
        this.#note(`started (pid ${pid})`);
        void this.spec.reaper.exited(pid).then((status) => this.#onExit(status.signal === null ? `code ${status.code}` : `signal ${status.signal}`));
      },
      (err: unknown) => {
        this.#starting = null;
        this.#onExit(`could not start: ${(err as Error).message}`);
      },
    );
  }

  #onExit(how: string): void {
    this.#pid = null;
    this.#note(`exited (${how})`);
    for (const w of this.#exitWaiters.splice(0)) w();
    if (this.#wanted && this.spec.restart !== false) {
      this.#restartTimer = setTimeout(() => {
        this.#restartTimer = null;
        if (this.#wanted) this.#spawn();
      }, this.spec.restartDelayMs ?? 1_000);
    }
  }

  #exited(): Promise<void> {
    if (this.#pid === null) return Promise.resolve();
    return new Promise((resolve) => this.#exitWaiters.push(resolve));
  }

  /** kill -9 the daemon; the restart policy brings it back. Resolves once it has exited. */
  async kill9(): Promise<void> {
    await this.#starting;
    const pid = this.#pid;
    if (pid === null) return;
    this.#note('kill -9 (fault)');
    const exited = this.#exited();
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await exited;
  }

  /** Stops for good (SIGTERM, then SIGKILL after `graceMs`), like `systemctl stop`. */
  async stop(graceMs = 5_000): Promise<void> {
    this.#wanted = false;
    if (this.#restartTimer !== null) {
      clearTimeout(this.#restartTimer);
      this.#restartTimer = null;
    }
    await this.#starting;
    const pid = this.#pid;
    if (pid === null) return;
    const exited = this.#exited();
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }, graceMs);
    await exited;
    clearTimeout(timer);
  }

  async restart(): Promise<void> {
    await this.stop();
    this.start();
  }
}
