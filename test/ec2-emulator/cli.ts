// Standalone EC2 + IMDSv2 emulator.
//   npm run ec2-emulator -- --config FILE [--port P] [--host H] [--imds-port Q --instance i-...]
//   npm run ec2-emulator -- --emulator-url http://H:P --imds-port Q --instance i-...   (IMDS only,
//     serving the view of an emulator running elsewhere, e.g. in another network namespace)
import { parseArgs } from 'node:util';
import { EmulatorConfigError, loadEmulatorConfigFile, remoteImdsSource, startImds, startResolvedEc2Emulator, type ImdsServer } from './index.js';

const usage = `usage:
  npm run ec2-emulator -- --config FILE [--port P] [--host H] [--imds-port Q --instance i-... [--imds-host H]]
  npm run ec2-emulator -- --emulator-url URL --imds-port Q --instance i-... [--imds-host H]`;

function fail(message: string): never {
  console.error(`ec2-emulator: ${message}`);
  process.exit(2);
}

function portOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--${name} must be a port number, not ${value}`);
  return port;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'imds-port': { type: 'string' },
      'imds-host': { type: 'string' },
      instance: { type: 'string' },
      'emulator-url': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  const imdsPort = portOption(values['imds-port'], 'imds-port');
  if ((imdsPort === undefined) !== (values.instance === undefined)) fail(`--imds-port and --instance go together\n${usage}`);
  const closers: Array<() => Promise<void>> = [];
  const imdsServers: ImdsServer[] = [];

  if (values['emulator-url'] !== undefined) {
    if (values.config !== undefined) fail(`give either --config or --emulator-url\n${usage}`);
    if (imdsPort === undefined) fail(`--emulator-url serves IMDS only: give --imds-port and --instance\n${usage}`);
    const source = remoteImdsSource(values['emulator-url']);
    imdsServers.push(await startImds({ instanceId: values.instance!, source, host: values['imds-host'] ?? '127.0.0.1', port: imdsPort }));
  } else {
    if (values.config === undefined) fail(`--config is required\n${usage}`);
    const config = loadEmulatorConfigFile(values.config);
    const port = portOption(values.port, 'port');
    const ec2 = await startResolvedEc2Emulator({
      ...config,
      ...(port !== undefined ? { port } : {}),
      ...(values.host ? { host: values.host } : {}),
    });
    closers.push(() => ec2.close());
    console.log(`ec2-emulator: EC2 API listening on ${ec2.url} (region ${ec2.region}; admin API under ${ec2.url}/__admin/)`);
    const wanted = [...config.imds];
    if (imdsPort !== undefined) wanted.push({ instanceId: values.instance!, port: imdsPort, host: values['imds-host'] ?? '127.0.0.1', tokensRequired: true });
    for (const imds of wanted) imdsServers.push(await startImds({ ...imds, source: ec2 }));
  }
  for (const imds of imdsServers) {
    closers.unshift(() => imds.close());
    console.log(`ec2-emulator: IMDS for ${imds.instanceId} listening on ${imds.url}`);
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`ec2-emulator: ${signal}, shutting down`);
    Promise.all(closers.map((close) => close())).then(
      () => process.exit(0),
      (err: unknown) => {
        console.error('ec2-emulator: shutdown failed:', err);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  if (err instanceof EmulatorConfigError) fail(err.message);
  if (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS')) fail(`${err.message}\n${usage}`);
  if (err instanceof Error && 'code' in err && err.code === 'EADDRINUSE') fail(err.message);
  console.error('ec2-emulator:', err);
  process.exit(1);
});
