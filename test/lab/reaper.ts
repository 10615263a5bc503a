// The controller's handle on reaper.py: the lab's long-lived processes (daemons, PostgreSQL started
// with pg_ctl) are spawned through it, so that it is their ancestor and reaps every orphan at once
// (see reaper.py for why). One per lab; it goes away with the lab.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { RunResult } from './exec.js';

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'reaper.py');

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: number | null;
}

export class Reaper {
  readonly #child: ChildProcess;
  #next = 1;
  readonly #replies = new Map<number, { resolve: (pid: number) => void; reject: (e: Error) => void }>();
  readonly #exitWaiters = new Map<number, Array<(s: ExitStatus) => void>>();
  readonly #exited = new Map<number, ExitStatus>();

  private constructor(child: ChildProcess) {
    this.#child = child;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as {
        id?: number;
        pid?: number;
        error?: string;
        exit?: number;
        code?: number | null;
        signal?: number | null;
      };
      if (m.id !== undefined) {
        const waiter = this.#replies.get(m.id);
        this.#replies.delete(m.id);
        if (m.error !== undefined) waiter?.reject(new Error(`reaper: ${m.error}`));
        else waiter?.resolve(m.pid!);
      } else if (m.exit !== undefined) {
        const status = { code: m.code ?? null, signal: m.signal ?? null };
        const waiters = this.#exitWaiters.get(m.exit);
        this.#exitWaiters.delete(m.exit);
        if (waiters === undefined) this.#exited.set(m.exit, status);
        for (const w of waiters ?? []) w(status);
      }
    });
  }

  static async start(): Promise<Reaper> {
    const child = spawn('/usr/bin/python3', [script], { stdio: ['pipe', 'pipe', 'inherit'] });
    const reaper = new Reaper(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`reaper.py exited at start (code ${code})`)));
    });
    return reaper;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Starts `argv` (its own session/process group, stdout+stderr appended to `log`); resolves with its pid. */
  spawn(
    argv: readonly string[],
    options: { env: Readonly<Record<string, string>>; log: string; cwd?: string },
  ): Promise<number> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#replies.set(id, { resolve, reject });
      this.#child.stdin!.write(`${JSON.stringify({ id, argv, env: options.env, log: options.log, cwd: options.cwd ?? '/' })}\n`);
    });
  }

  /** Resolves when a process this reaper spawned has exited. */
  exited(pid: number): Promise<ExitStatus> {
    const done = this.#exited.get(pid);
    if (done !== undefined) {
      this.#exited.delete(pid);
      return Promise.resolve(done);
    }
    return new Promise((resolve) => this.#exitWaiters.set(pid, [...(this.#exitWaiters.get(pid) ?? []), resolve]));
  }

  /** Runs a command to completion through the reaper (for commands that leave a daemon behind, like pg_ctl start). */
  async run(
    argv: readonly string[],
    options: { env: Readonly<Record<string, string>>; timeoutMs: number },
  ): Promise<RunResult> {
    const dir = mkdtempSync(path.join(tmpdir(), 'pgvip-reaper-run-'));
    const log = path.join(dir, 'output');
    try {
      const pid = await this.spawn(argv, { env: options.env, log });
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // gone
        }
      }, options.timeoutMs);
      const status = await this.exited(pid);
      clearTimeout(timer);
      const output = readFileSync(log, 'utf8');
      return { code: status.code, signal: null, stdout: output, stderr: output, timedOut };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  close(): void {
    this.#child.stdin?.end();
    this.#child.kill('SIGKILL');
  }
}
