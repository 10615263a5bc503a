// The command hook: one local program run per event, with no shell in between (the event's detail
// comes from the cluster and must never be interpreted as shell syntax). The program gets the event
// three ways, so that a one-line shell script and a careful program are both easy to write:
//   argv:  <configured args...> <type> <cluster> <node or ""> <term> <detail>
//   env:   PGVIP_EVENT_ID, _AT, _CLUSTER, _TYPE, _NODE, _TERM, _DETAIL
//   stdin: the event as one line of JSON (the same document a webhook receives)
import { spawn } from 'node:child_process';
import { cleanText } from '@pgvip/shared/text';
import type { PgvipEvent } from '../events.js';

export interface CommandTarget {
  readonly path: string;
  readonly args: readonly string[];
  readonly timeoutMs: number;
}

/** After SIGTERM at the timeout, how long the program may take to exit before SIGKILL. */
const killGraceMs = 2_000;
/** How much of the program's stderr is kept for the failure message. */
const stderrTailChars = 500;

export function commandArgs(target: CommandTarget, e: PgvipEvent): string[] {
  return [...target.args, e.type, e.cluster, e.node ?? '', String(e.term), e.detail];
}

export function commandEnv(e: PgvipEvent, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {
    ...base,
    PGVIP_EVENT_ID: String(e.id),
    PGVIP_EVENT_AT: e.at,
    PGVIP_EVENT_CLUSTER: e.cluster,
    PGVIP_EVENT_TYPE: e.type,
    PGVIP_EVENT_NODE: e.node ?? '',
    PGVIP_EVENT_TERM: String(e.term),
    PGVIP_EVENT_DETAIL: e.detail,
  };
}

/** Runs the hook for one event; rejects when it cannot start, exits non-zero or times out. */
export function runCommand(target: CommandTarget, e: PgvipEvent, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    // Its own process group, so that a timeout also ends what the hook started (curl, mail, ...).
    const child = spawn(target.path, commandArgs(target, e), {
      env: commandEnv(e),
      stdio: ['pipe', 'ignore', 'pipe'],
      detached: true,
      shell: false,
    });
    let stderr = '';
    let killedBecause: string | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, sig);
      } catch {
        // Already gone.
      }
    };
    const stop = (why: string) => {
      if (killedBecause !== undefined) return;
      killedBecause = why;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), killGraceMs);
    };
    const timeout = setTimeout(() => stop(`killed after ${target.timeoutMs} ms (timeoutMs)`), target.timeoutMs);
    const onAbort = () => stop('killed: the notifier is shutting down');
    signal.addEventListener('abort', onAbort, { once: true });
    const cleanup = () => {
      clearTimeout(timeout);
      clearTimeout(killTimer);
      signal.removeEventListener('abort', onAbort);
    };

    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-stderrTailChars);
    });
    // A hook that ignores stdin and exits early makes our write fail with EPIPE: that is fine.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(`${JSON.stringify(e)}\n`);

    child.on('error', (err: NodeJS.ErrnoException) => {
      cleanup();
      reject(new Error(`cannot run ${target.path}: ${err.code ?? err.message}${err.code === 'ENOENT' ? ' (no such file)' : err.code === 'EACCES' ? ' (not executable: chmod +x it)' : ''}`));
    });
    child.on('close', (code, sig) => {
      cleanup();
      // The hook's stderr is quoted in the history, which operators read on a terminal: plain text only.
      const said = cleanText(stderr, { multiline: true, maxChars: stderrTailChars }).trim();
      const tail = said === '' ? '' : `; stderr: ${said.replace(/\s*\n\s*/g, ' | ')}`;
      if (killedBecause !== undefined) reject(new Error(`${target.path} ${killedBecause}${tail}`));
      else if (code === 0) resolve();
      else reject(new Error(`${target.path} ${code !== null ? `exited with status ${code}` : `was killed by ${sig}`}${tail}`));
    });
  });
}
