// Runs the pgvip CLI as a child process from source, as an operator would run it, and collects
// its exit code and output.
import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const entry = 'packages/witness/src/cli/main.ts';
export const cliCommand = [process.execPath, '--conditions=pgvip-source', '--import', 'tsx', entry] as const;

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly env?: Record<string, string | undefined>;
  /** Written to stdin (a pipe, so never a terminal), which is then closed. */
  readonly input?: string;
  readonly timeoutMs?: number;
}

/** The environment of every run: no inherited PGVIP_* or AWS settings, UTC, no colour. */
function baseEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PGVIP_') && !k.startsWith('AWS_')) env[k] = v;
  Object.assign(env, { TZ: 'UTC', NO_COLOR: '1', AWS_EC2_METADATA_DISABLED: 'true' }, extra);
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  return env;
}

export function runPgvip(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  return runProcess(cliCommand[0], [...cliCommand.slice(1), ...args], options);
}

/**
 * Runs the CLI under `script`, which gives it a pseudo-terminal: the only way to answer the
 * confirmation question that pgvip asks on a terminal and nowhere else.
 */
export function runPgvipOnTerminal(
  args: readonly string[],
  answer: string,
  options: RunOptions = {},
): Promise<CliResult> {
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const commandLine = [...cliCommand, ...args].map(quote).join(' ');
  return runProcess('script', ['-qefc', commandLine, '/dev/null'], { ...options, input: answer });
}

function runProcess(file: string, args: readonly string[], options: RunOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: repoRoot, env: baseEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pgvip ${args.join(' ')} did not finish within ${options.timeoutMs ?? 30_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** A file with mode 0600 (or `mode`), as the CLI demands of a token file. */
export function writeFile600(file: string, content: string, mode = 0o600): string {
  writeFileSync(file, content);
  chmodSync(file, mode);
  return file;
}
