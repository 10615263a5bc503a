// `pgvip-agent --config /etc/pgvip/agent.yaml`: the agent daemon. Only this file listens and exits.
//
// Environment (mainly for tests and the lab): PGVIP_EC2_ENDPOINT (or AWS_ENDPOINT_URL_EC2) and
// PGVIP_IMDS_ENDPOINT (or AWS_EC2_METADATA_SERVICE_ENDPOINT, the SDK's own variable) point the VIP
// port at an emulator. AWS credentials come from the SDK's default chain: on EC2, the instance role
// from IMDS — the same IMDS the agent reads, since the SDK honours AWS_EC2_METADATA_SERVICE_ENDPOINT too.
import './v8-tiering.js'; // first: see the module
import { parseArgs } from 'node:util';
import pino from 'pino';
import { formatConfigError, isPgvipError, loadAgentConfig, rememberSighupWhileStarting } from '@pgvip/shared';
import { startAgentDaemon } from './daemon.js';
import { createVipPort, vipPortConfigOf } from './vip/ec2-vip.js';

async function main(): Promise<number> {
  // A SIGHUP while starting is remembered, not fatal; the files are read again once the daemon is up.
  const sighup = rememberSighupWhileStarting();
  let args;
  try {
    args = parseArgs({ options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
  } catch (e) {
    console.error(`pgvip-agent: ${(e as Error).message}\nusage: pgvip-agent --config FILE`);
    return 2;
  }
  // Asked for, the usage goes to stdout (exit 0); as a usage error, to stderr (exit 2).
  if (args.values.help) {
    console.log('usage: pgvip-agent --config FILE\n  the pgvip agent: the daemon on each database node (docs/configuration.md)');
    return 0;
  }
  if (args.values.config === undefined) {
    console.error('pgvip-agent: --config is required\nusage: pgvip-agent --config FILE');
    return 2;
  }
  let cfg;
  try {
    cfg = await loadAgentConfig(args.values.config);
  } catch (e) {
    console.error(formatConfigError(e));
    return 2;
  }
  const logger = pino({ level: cfg.logLevel, base: { daemon: 'pgvip-agent' }, redact: ['password', '*.password', 'key', '*.key'] });
  const ec2Endpoint = process.env.PGVIP_EC2_ENDPOINT ?? process.env.AWS_ENDPOINT_URL_EC2;
  const imdsEndpoint = process.env.PGVIP_IMDS_ENDPOINT ?? process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
  const vip = createVipPort(vipPortConfigOf(cfg), {
    logger,
    ...(ec2Endpoint === undefined ? {} : { ec2Endpoint }),
    ...(imdsEndpoint === undefined ? {} : { imdsEndpoint }),
  });
  let daemon;
  try {
    daemon = await startAgentDaemon(cfg, { logger, vip });
  } catch (e) {
    if (isPgvipError(e)) {
      logger.fatal({ code: e.code }, e.message);
      console.error(e.message);
      return e.category === 'config' ? 2 : 1;
    }
    throw e;
  }
  // SIGHUP (systemctl reload): read the TLS files again, e.g. after a certificate renewal; the daemon
  // keeps running either way, and a file that fails its checks leaves the old certificate in use.
  const started = daemon;
  const reload = (): void => {
    started.reloadTls().then(
      (m) => {
        if (m === null) logger.info('SIGHUP: no tls block in the config, nothing to reload');
      },
      (e: unknown) => logger.error({ code: isPgvipError(e) ? e.code : undefined }, `SIGHUP: TLS files not reloaded, the old ones stay in use: ${(e as Error).message}`),
    );
  };
  sighup.ready(reload);
  // SIGTERM (systemd stop, upgrades): stop cleanly. The durable state is already on disk, and a
  // restarted agent gets its lease back within one heartbeat, so an upgrade causes no failover.
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'stopping');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await daemon.close();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`pgvip-agent: unexpected error: ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
  },
);
