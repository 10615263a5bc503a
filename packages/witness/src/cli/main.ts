#!/usr/bin/env node
// Entry point of the `pgvip` operator CLI (docs/cli.md). Exit codes: 0 ok, 1 check failed or
// refused, 2 usage or config error, 3 witness unreachable, 4 authentication failure.
import { runCli } from './program.js';

// `pgvip history | head` closes our stdout early: that is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

process.exitCode = await runCli(process.argv, { stdout: process.stdout, stderr: process.stderr });
