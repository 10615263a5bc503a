// A small service manager for the lab's daemons, doing what systemd does for them in production:
// start on a host (namespace + cgroup + user), append stdout/stderr to a log file, and restart after
// any exit, one second later (Restart=always, RestartSec=1). Faults use kill9() (the daemon dies and
// comes back), stop() (gone for good, like `systemctl stop`) and start() again.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, openSync } from 'node:fs';
import { onHost, type HostExecOptions } from './exec.js';
import { repoRoot } from './ipc.js';
import type { HostName } from './topology.js';

export interface ServiceSpec {
  /** e.g. "agent db-a", "witness", "baseline db-b". */
  readonly name: string;
  readonly host: HostName;
  readonly argv: readonly string[];
  readonly run?: HostExecOptions;
  readonly env?: Readonly<Record<string, string>>;
  readonly logFile: string;
  /** Delay before a restart (default 1000 ms, systemd's RestartSec=1 in deploy/systemd). */
  readonly restartDelayMs?: number;
  /** Restart after an exit (default true). */
  readonly restart?: boolean;
}

export class Service {
  readonly spec: ServiceSpec;
  #child: ChildProcess | null = null;
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

  /** The running process's pid (the daemon itself: `ip netns exec` and the cgroup shell exec into it). */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  get running(): boolean {
    return this.#child !== null;
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
    if (this.#child !== null || this.#restartTimer !== null) return;
    this.#spawn();
  }

  #spawn(): void {
    const argv = onHost(this.spec.host, this.spec.argv, this.spec.run);
    const fd = openSync(this.spec.logFile, 'a');
    let child: ChildProcess;
    try {
      // Detached: a Ctrl-C in the lab's terminal reaches the lab, which then stops its services in
      // order; it must not kill the daemons behind the supervisor's back.
      child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd], detached: true, cwd: repoRoot, env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...this.spec.env } });
    } finally {
      closeSync(fd);
    }
    this.starts += 1;
    this.#child = child;
    this.#note(`started (pid ${child.pid})`);
    child.once('exit', (code, signal) => {
      this.#child = null;
      this.#note(`exited (${signal ?? `code ${code}`})`);
      for (const w of this.#exitWaiters.splice(0)) w();
      if (this.#wanted && this.spec.restart !== false) {
        this.#restartTimer = setTimeout(() => {
          this.#restartTimer = null;
          if (this.#wanted) this.#spawn();
        }, this.spec.restartDelayMs ?? 1_000);
      }
    });
  }

  #exited(): Promise<void> {
    if (this.#child === null) return Promise.resolve();
    return new Promise((resolve) => this.#exitWaiters.push(resolve));
  }

  /** kill -9 the daemon; the restart policy brings it back. Resolves once it has exited. */
  async kill9(): Promise<void> {
    const pid = this.pid;
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
    const pid = this.pid;
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
