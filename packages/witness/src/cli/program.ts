// The `pgvip` command line: commander wiring, global options, and the command groups (commands/
// operate.ts acts through the witness, commands/setup.ts on this host's files). Every action either
// returns normally (exit 0) or throws a CliError; runCli() turns both into output and an exit code,
// so no command can leave the process with a stack trace or a stray code.
import { readFileSync } from 'node:fs';
import { cleanText, terminalSafeJson } from '@pgvip/shared/text';
import { Command, CommanderError, Option } from 'commander';
import { addEtcdMoveCommands } from './commands/etcd-move.js';
import { addOperateCommands } from './commands/operate.js';
import { addRestartCommand } from './commands/restart.js';
import { addSetupCommands } from './commands/setup.js';
import { CliError, exitCodes, type ExitCode } from './errors.js';
import {
  defaultTokenFile,
  defaultWitnessUrl,
  Session,
  type CliIo,
  type GlobalOptions,
  type RunAction,
} from './session.js';

export { defaultTokenFile, defaultWitnessUrl, pickTokenFile, type CliIo } from './session.js';

/** This package's version (src/cli and dist/cli both sit two levels under the package root). */
export const pgvipVersion = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export function buildProgram(io: CliIo, run: RunAction): Command {
  const program = new Command('pgvip')
    .description('Operate pgvip clusters through their witness: state, history, switchover, maintenance; and check config files and a node\'s AWS setup.')
    .addOption(
      new Option('--witness <url>', 'operator API of the witness').env('PGVIP_WITNESS_URL').default(defaultWitnessUrl),
    )
    .addOption(
      new Option('--token-file <path>', `file holding the operator API token (mode 0600; default ${defaultTokenFile} when it exists)`)
        .env('PGVIP_TOKEN_FILE'),
    )
    .addOption(
      new Option('--ca-file <path>', 'CA certificate (PEM) an https:// witness\'s certificate must chain to (default: the system\'s CAs)')
        .env('PGVIP_CA_FILE'),
    )
    .option('--cluster <name>', 'cluster to act on (default: the only one the witness serves)')
    .option('--json', 'print JSON documents for scripts instead of tables')
    .version(pgvipVersion, '-V, --version', 'print the pgvip version')
    .showSuggestionAfterError()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: (text, write) => write(`pgvip: ${text.replace(/^error: /, '').trimEnd()} (see pgvip --help)\n`),
    })
    .exitOverride();
  addOperateCommands(program, run);
  addRestartCommand(program, run);
  addEtcdMoveCommands(program, run);
  addSetupCommands(program, run);
  return program;
}

/** Parses argv, runs the command, prints any error, and returns the exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<ExitCode> {
  let session: Session | undefined;
  let exitCode: ExitCode = exitCodes.ok;
  const fail = (err: unknown) => {
    const unexpected = () => `unexpected error: ${err instanceof Error ? err.message : String(err)}`;
    const error = err instanceof CliError ? err : new CliError(exitCodes.failed, unexpected(), 'internal');
    exitCode = error.exitCode;
    if (error.message === '') return; // the command has printed its own verdict
    // A message may quote the witness's (or whatever answers at its URL's) words: plain text only.
    if (session?.json) {
      const { code, message } = error;
      io.stdout.write(`${terminalSafeJson({ error: { code, message, exitCode: error.exitCode } })}\n`);
    } else {
      io.stderr.write(`pgvip: ${cleanText(error.message, { multiline: true, maxChars: 4000 })}\n`);
    }
  };
  const program = buildProgram(io, async (action, command) => {
    const global = command.optsWithGlobals<GlobalOptions>();
    session = new Session(io, global, command.parent?.getOptionValueSource('tokenFile') === 'env');
    await action(session);
  });
  try {
    await program.parseAsync([...argv]);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with code 0; every parse error is a usage error.
      exitCode = err.exitCode === 0 ? exitCodes.ok : exitCodes.usage;
    } else {
      fail(err);
    }
  } finally {
    await session?.close().catch(() => undefined);
  }
  return exitCode;
}
