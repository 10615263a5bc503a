// Runs one hook program: the argv array straight to execve (no shell ever sees it, so `;` or
// `$(...)` in an argument is just text), the event as JSON on stdin and in PGVIP_* variables, in a
// process group of its own so a timeout kills whatever it started too, and without the agent's
// CAP_NET_ADMIN (./capabilities.ts). Output is kept up to a bound and cleaned before anyone logs it.
// The result is a value; nothing here throws.
import { spawn } from 'node:child_process';
import { cleanText } from '@pgvip/shared/text';
import { withoutCapabilities } from './capabilities.js';

export interface HookRun {
  /** argv: the program's absolute path, then its arguments. */
  readonly command: readonly string[];
  readonly stdin: string;
  readonly env: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  /** Most bytes kept of stdout and of stderr each (the rest is read and dropped). */
  readonly outputBytesMax?: number;
}

export type HookOutcome = 'ok' | 'failed' | 'timeout' | 'error';

export interface HookResult {
  /** ok: exit 0; failed: another exit code or a signal; timeout: killed at timeoutMs; error: could not start. */
  readonly outcome: HookOutcome;
  readonly exitCode: number | null;
  readonly signal: string | null;
  /** Cleaned, bounded output (multi-line kept). */
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
  /** One line for logs and effect results. */
  readonly summary: string;
}

/** How long output may still arrive after the hook exited (a child it left running may hold the pipe). */
const drainAfterExitMs = 200;

class BoundedText {
  readonly #chunks: Buffer[] = [];
  #bytes = 0;
  #dropped = 0;
  constructor(readonly maxBytes: number) {}
  add(chunk: Buffer): void {
    const room = this.maxBytes - this.#bytes;
    if (room > 0) {
      const kept = chunk.subarray(0, room);
      this.#chunks.push(kept);
      this.#bytes += kept.length;
    }
    this.#dropped += Math.max(0, chunk.length - Math.max(0, room));
  }
  text(): string {
    const body = cleanText(Buffer.concat(this.#chunks).toString('utf8'), { multiline: true, maxChars: this.maxBytes }).trimEnd();
    return this.#dropped > 0 ? `${body}… (${this.#dropped} more bytes dropped)` : body;
  }
}

export function runHookProcess(run: HookRun): Promise<HookResult> {
  const started = performance.now();
  const [file, ...args] = run.command;
  const outMax = run.outputBytesMax ?? 4096;
  const stdout = new BoundedText(outMax);
  const stderr = new BoundedText(outMax);
  return new Promise((resolve) => {
    let timedOut = false;
    let settled = false;
    // Set once the child runs; finish() may come first (a missing command).
    const timers: { kill?: NodeJS.Timeout } = {};
    const finish = (outcome: HookOutcome, exitCode: number | null, signal: string | null, why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timers.kill);
      const durationMs = Math.round(performance.now() - started);
      const err = stderr.text();
      const tail = err === '' ? '' : `: ${cleanText(err, { maxChars: 300 })}`;
      resolve({ outcome, exitCode, signal, stdout: stdout.text(), stderr: err, durationMs, summary: `${why} after ${durationMs} ms${tail}` });
    };
    if (file === undefined) {
      finish('error', null, null, 'no command configured');
      return;
    }
    const unprivileged = withoutCapabilities([file, ...args]);
    if (!unprivileged.ok) {
      finish('error', null, null, unprivileged.why);
      return;
    }
    const [program, ...argv] = unprivileged.argv;
    const child = spawn(program!, argv, {
      shell: false,
      // Its own process group: a timeout kills the hook and everything it started (kill(-pgid)).
      detached: true,
      cwd: '/',
      env: { ...run.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const killGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    timers.kill = setTimeout(() => {
      timedOut = true;
      killGroup();
      // A process stuck in the kernel exits only when it leaves it; the caller's bound holds anyway.
      setTimeout(() => finish('timeout', null, 'SIGKILL', `killed after its timeout of ${run.timeoutMs} ms (still exiting)`), 1000).unref();
    }, run.timeoutMs);
    child.stdout.on('data', (c: Buffer) => stdout.add(c));
    child.stderr.on('data', (c: Buffer) => stderr.add(c));
    // A hook that does not read its stdin closes the pipe: EPIPE is no failure of the hook.
    child.stdin.on('error', () => undefined);
    child.stdin.end(run.stdin);
    child.on('error', (e) => finish('error', null, null, `could not start ${file}: ${e.message}`));
    child.on('exit', (code, signal) => {
      const done = (): void => {
        // A daemon the hook started in the background (pgbouncer -d) may keep the pipes open: stop
        // reading them, but leave it running.
        child.stdout.destroy();
        child.stderr.destroy();
        if (timedOut) finish('timeout', code, signal, `killed after its timeout of ${run.timeoutMs} ms`);
        else if (code === 0) finish('ok', 0, null, 'exited 0');
        else if (code !== null) finish('failed', code, null, `exited ${code}`);
        else finish('failed', null, signal, `killed by ${signal ?? 'a signal'}`);
      };
      let drained = 0;
      const drain = setTimeout(done, drainAfterExitMs);
      const onClose = (): void => {
        drained += 1;
        if (drained === 2) {
          clearTimeout(drain);
          done();
        }
      };
      if (child.stdout.closed) onClose();
      else child.stdout.once('close', onClose);
      if (child.stderr.closed) onClose();
      else child.stderr.once('close', onClose);
    });
  });
}
