// The one rule for the command line of every pgvip command that has no parser of its own (npm run
// sim, demo, bench:*, docs:*, release, bootstrap, build, test, ...): `--help` (or -h) prints the usage
// on stdout and exits 0 before the command does anything (no install, no lab); an unknown option, a
// missing or stray value prints one line saying what is wrong and the usage on stderr, and exits 2 —
// never a stack trace. Plain JavaScript with no dependencies, because bootstrap.mjs uses it before
// any are installed. The daemons and the `pgvip` CLI use commander with the same behaviour.
import { parseArgs } from 'node:util';

/** Prints `message` and the usage on stderr and exits 2 (a usage error, as the `pgvip` CLI's exit code 2). */
export function usageError(usage, message) {
  // The command's name, from its usage line ("usage: npm run sim -- ..." -> "sim"), leads the message.
  const name = /^usage:\s+(?:npm run |npm |node )?(\S+)/i.exec(usage)?.[1];
  process.stderr.write(`${name === undefined ? '' : `${name}: `}${message}\n${usage.trimEnd()}\n`);
  process.exit(2);
}

/**
 * Parses `argv` (default: process.argv after the script) strictly against `options` (node:util
 * parseArgs shapes); `help` is added. Returns { values, positionals }; exits on --help or an error.
 */
export function parseCommandLine({ usage, options = {}, allowPositionals = false, argv = process.argv.slice(2) }) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (err) {
    // ERR_PARSE_ARGS_UNKNOWN_OPTION and friends: their message names the option.
    usageError(usage, err instanceof Error ? err.message : String(err));
  }
  if (parsed.values.help) {
    process.stdout.write(`${usage.trimEnd()}\n`);
    process.exit(0);
  }
  delete parsed.values.help;
  return parsed;
}
