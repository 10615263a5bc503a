#!/usr/bin/env node
// pgvip-witness --config /etc/pgvip/witness.yaml
//
// Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT), 2 for a configuration problem (the file,
// or a key/token/secret file it names; printed without a stack trace), 1 for anything else that
// stops the daemon (a corrupt state file, a port in use).
import { Command } from 'commander';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { formatConfigError, isPgvipError, loadWitnessConfig, rememberSighupWhileStarting, tlsMode, type WitnessConfig } from '@pgvip/shared';
import { createWitnessDaemon, type WitnessDaemon } from './daemon.js';
import { registerDashboard } from './dashboard/index.js';

// A SIGHUP while starting (opening the state and history, reaching etcd) is remembered, not fatal;
// the TLS files are read again once the witness serves.
const sighup = rememberSighupWhileStarting();

const program = new Command()
  .name('pgvip-witness')
  .description('The pgvip witness: the third voter of every cluster in its config, with the operator API.')
  .option('-c, --config <file>', 'witness config file', '/etc/pgvip/witness.yaml')
  .showHelpAfterError();
program.parse();
const { config: configPath } = program.opts<{ config: string }>();

function isConfigProblem(e: unknown): boolean {
  return isPgvipError(e) && e.category === 'config';
}

let config: WitnessConfig;
try {
  config = await loadWitnessConfig(configPath);
} catch (e) {
  process.stderr.write(`${formatConfigError(e)}\n`);
  process.exit(2);
}

const log: Logger = pino({
  level: config.logLevel,
  base: { daemon: 'pgvip-witness', witness: config.id },
  // Nothing secret is logged on purpose; this is the safety net for a header that slips into a line.
  redact: ['req.headers.authorization', 'headers.authorization', 'headers["x-pgvip-auth"]', 'token'],
});

process.on('uncaughtException', (err) => {
  log.fatal({ err }, 'uncaught exception; exiting so the service manager restarts the witness');
  process.exit(1);
});
process.on('unhandledRejection', (err) => {
  log.fatal({ err }, 'unhandled rejection; exiting so the service manager restarts the witness');
  process.exit(1);
});

// The read-only dashboard at GET / of the operator API (docs/witness-dashboard.md).
const extendOperator: ((app: FastifyInstance) => void) | undefined = (app) => registerDashboard(app);

let daemon: WitnessDaemon;
try {
  daemon = await createWitnessDaemon(config, { log, ...(extendOperator === undefined ? {} : { extendOperator }) });
} catch (e) {
  if (isConfigProblem(e)) {
    process.stderr.write(`${formatConfigError(e)}\n`);
    process.exit(2);
  }
  if (isPgvipError(e)) {
    // A coded error says what is wrong and the fix (e.g. PGVIP_STATE_WRITE, PGVIP_STATE_CORRUPT): no stack.
    log.fatal({ code: e.code, stateDir: config.stateDir }, `refusing to start: ${e.message}`);
  } else {
    log.fatal({ err: e }, `cannot start the witness: ${(e as Error).message}`);
  }
  process.exit(1);
}

try {
  await daemon.protocol.listen({ host: config.listen.host, port: config.listen.port });
  await daemon.operator.listen({ host: config.operatorApi.host, port: config.operatorApi.port });
} catch (e) {
  log.fatal({ err: e }, `cannot listen: ${(e as Error).message}`);
  await daemon.close();
  process.exit(1);
}
daemon.startPolling();
log.info(
  {
    listen: config.listen,
    tls: tlsMode(config.tls),
    operatorApi: { host: config.operatorApi.host, port: config.operatorApi.port, tls: config.operatorApi.tls === undefined ? 'off' : 'on' },
    clusters: config.clusters.map((c) => c.name),
    stateFile: daemon.stateFile,
  },
  `witness ${config.id} serving ${config.clusters.length} cluster(s)`,
);

// SIGHUP (systemctl reload): read the TLS files again, e.g. after a certificate renewal; the witness
// keeps running either way, and a listener whose files fail their checks keeps its old certificate.
sighup.ready(() => {
  // The daemon logs each listener's outcome: which took its new files, which kept its old ones.
  daemon.reloadTls().then(
    (outcomes) => {
      if (outcomes.length === 0) log.info('SIGHUP: no tls block in the config, nothing to reload');
    },
    (e: unknown) => log.error({ err: e }, `SIGHUP: TLS reload failed: ${(e as Error).message}`),
  );
});

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting at once');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down: stop polling, close servers, flush history');
    daemon.close().then(
      () => log.flush(() => process.exit(0)),
      (err: unknown) => {
        log.error({ err }, 'error while shutting down');
        process.exit(1);
      },
    );
  });
}
