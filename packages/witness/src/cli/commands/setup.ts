// The commands that work on this host's files and setup, without a witness: check-config, init and
// doctor. They load the shared package (config loader, secret files) only when they run.
import { readFile } from 'node:fs/promises';
import type { AgentConfig, WitnessConfig } from '@pgvip/shared';
import { cleanStrings, cleanText } from '@pgvip/shared/text';
import { type Command, Option } from 'commander';
import { checkHost } from '../check-config.js';
import { runDoctor, type Check } from '../doctor.js';
import { CliError, exitCodes, usageError } from '../errors.js';
import { paint, type Style } from '../format.js';
import { defaultImdsUrl } from '../imds.js';
import { nextSteps, runInit, terminalAsk } from '../init.js';
import { loadShared, type GlobalOptions, type RunAction, type Session } from '../session.js';

export function addSetupCommands(program: Command, run: RunAction): void {
  program
    .command('check-config')
    .description('validate an agent or witness config file, then check this host as the daemon does before it starts (key, token, password and secret files, state directory); print every problem (exit 2 when any)')
    .argument('<file>', 'the YAML file')
    .addOption(
      new Option('--kind <kind>', 'agent or witness (default: guessed from the top-level keys)')
        .choices(['agent', 'witness']),
    )
    .option('--no-host-checks', 'check the file only, not the files and directories it names on this host (for a file meant for another host)')
    .option('--user <name>', 'as root: check the files for this user (default: the daemon\'s, postgres for an agent file, pgvip for a witness file)')
    .action((file: string, opts: CheckConfigOptions, cmd: Command) => run((s) => checkConfig(s, file, opts), cmd));

  const collect = (value: string, previous: string[]) => [...previous, value];
  program
    .command('init')
    .description('write a starting config set for one cluster: agent-<node>.yaml for both nodes, witness.yaml, and fresh cluster.key and operator.token (0600); asks on a terminal for what the flags leave out. The cluster name comes from --cluster')
    .option('--node <name=address>', 'a database node and its private address (twice)', collect, [])
    .option('--witness-host <[name=]address>', 'the address the agents reach the witness at (name: default witness)')
    .addOption(
      new Option('--vip-mode <mode>', 'how the VIP moves (default secondary-ip)').choices(['secondary-ip', 'route-table']),
    )
    .option('--vip <address>', 'the VIP clients connect to')
    .option('--interface <name>', 'network device the agent adds the VIP to (default eth0)')
    .option('--route-table <id>', 'route-table mode: a route table holding the VIP\'s /32 route (repeat, or comma-separate)', collect, [])
    .option('--eni <node=eni-id>', 'a node\'s ENI, when it is configured rather than discovered through IMDS (repeat)', collect, [])
    .option('--region <region>', 'AWS region (default: from IMDS)')
    .option('--config-dir <dir>', 'where the files will be on the hosts; the configs name cluster.key and operator.token there', '/etc/pgvip')
    .option('--pg-data-dir <dir>', 'PGDATA on both nodes', '/var/lib/postgresql/15/main')
    .option('--pg-bin-dir <dir>', 'directory of pg_ctl, pg_rewind and pg_basebackup on both nodes', '/usr/lib/postgresql/15/bin')
    .option('--out <dir>', 'directory to write the files to (default ./pgvip-<cluster>)')
    .option('--force', 'replace files that exist (a new cluster.key must then reach every host)')
    .option('--tls', 'also write a CA and a certificate per daemon (tls/, made with openssl; keys 0600) and turn TLS on, mutual between the daemons, and on the operator API')
    .action((opts: InitOptions, cmd: Command) => run((s) => init(s, opts, cmd), cmd));

  program
    .command('doctor')
    .description('on a database node: check IMDS, the ENI, route tables, the VIP\'s subnet, IAM permissions, PostgreSQL\'s commit guard and, with a quorum.etcd block, the etcd endpoints, TLS, leader, permissions and round-trip time (exit 1 if any check fails)')
    .requiredOption('--config <file>', 'the agent config file, e.g. /etc/pgvip/agent.yaml')
    .option('--imds <url>', 'instance metadata service', defaultImdsUrl)
    .option('--ec2-endpoint <url>', 'EC2 API endpoint (default: the region\'s, or AWS_ENDPOINT_URL_EC2)')
    .action((opts: DoctorOptions, cmd: Command) => run((s) => doctor(s, opts), cmd));
}

interface CheckConfigOptions {
  kind?: 'agent' | 'witness';
  hostChecks: boolean;
  user?: string;
}

async function checkConfig(s: Session, file: string, opts: CheckConfigOptions): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file'
      : code === 'EACCES' ? 'permission denied'
      : code === 'EISDIR' ? 'is a directory'
      : String(err);
    throw usageError(`${file}: ${why}`);
  }
  const kind = opts.kind ?? guessKind(text);
  if (kind === undefined) {
    throw usageError(
      `${file}: cannot tell an agent file (top-level cluster:) from a witness file (top-level clusters:); ` +
        'pass --kind agent or --kind witness',
    );
  }
  const { formatConfigError, isPgvipError, parseConfigText } = await loadShared();
  let summary: string;
  let config: AgentConfig | WitnessConfig;
  try {
    config = parseConfigText(text, kind, file);
    summary = kind === 'agent' ? describeAgent(config as AgentConfig) : describeWitness(config as WitnessConfig);
  } catch (err) {
    if (!isPgvipError(err)) throw err;
    if (s.json) s.printJson({ file, kind, valid: false, code: err.code, problems: err.detail.split('\n') });
    else s.print(`${markFor('fail', s.style)} ${file} is not a valid ${kind} config\n${formatConfigError(err)}`);
    throw new CliError(exitCodes.usage, '', 'invalid-config');
  }
  if (!opts.hostChecks) {
    if (s.json) s.printJson({ file, kind, valid: true, summary });
    else s.print(`${markFor('ok', s.style)} ${file} is a valid ${kind} config: ${summary}`);
    return;
  }
  const host = await checkHost(kind, config, opts.user);
  const checkedAs = host.note ?? `checked as ${host.user.name}`;
  if (host.problems.length > 0) {
    const count = `${host.problems.length} problem${host.problems.length === 1 ? '' : 's'}`;
    if (s.json) {
      s.printJson({
        file,
        kind,
        valid: false,
        code: host.problems[0]!.code,
        problems: host.problems.flatMap((p) => p.detail.split('\n')),
        codes: host.problems.map((p) => p.code),
        checkedAs: host.user.name,
      });
    } else {
      s.print(
        `${markFor('fail', s.style)} ${file} is a valid ${kind} config, but pgvip-${kind} would refuse to start ` +
          `on this host (${count}; ${checkedAs}):\n${host.problems.map(formatConfigError).join('\n')}`,
      );
    }
    throw new CliError(exitCodes.usage, '', 'invalid-config');
  }
  if (s.json) {
    s.printJson({ file, kind, valid: true, summary, checkedAs: host.user.name });
  } else {
    s.print(
      `${markFor('ok', s.style)} ${file} is a valid ${kind} config: ${summary}\n  and this host is ready for it: ` +
        `key, token, password and secret files, state directory (${checkedAs})`,
    );
  }
}

interface InitOptions {
  node: string[];
  witnessHost?: string;
  vipMode?: string;
  vip?: string;
  interface?: string;
  routeTable: string[];
  eni: string[];
  region?: string;
  configDir: string;
  pgDataDir: string;
  pgBinDir: string;
  out?: string;
  force?: boolean;
  tls?: boolean;
}

async function init(s: Session, opts: InitOptions, cmd: Command): Promise<void> {
  const global = cmd.optsWithGlobals<GlobalOptions>();
  const terminal = terminalAsk();
  const result = await runInit({
    ...(global.cluster === undefined ? {} : { cluster: global.cluster }),
    nodes: opts.node,
    ...(opts.witnessHost === undefined ? {} : { witness: opts.witnessHost }),
    ...(opts.vipMode === undefined ? {} : { vipMode: opts.vipMode }),
    ...(opts.vip === undefined ? {} : { vip: opts.vip }),
    ...(opts.interface === undefined ? {} : { interface: opts.interface }),
    routeTables: opts.routeTable,
    enis: opts.eni,
    ...(opts.region === undefined ? {} : { region: opts.region }),
    configDir: opts.configDir,
    pgDataDir: opts.pgDataDir,
    pgBinDir: opts.pgBinDir,
    ...(opts.out === undefined ? {} : { out: opts.out }),
    force: opts.force === true,
    tls: opts.tls === true,
  }, terminal?.ask).finally(() => terminal?.close());
  if (s.json) {
    const files = result.files.map((f) => ({ ...f, mode: f.mode.toString(8).padStart(4, '0') }));
    s.printJson({ cluster: result.clusterName, out: result.out, files });
  } else {
    s.print(nextSteps(result, opts.configDir));
  }
}

interface DoctorOptions {
  config: string;
  imds: string;
  ec2Endpoint?: string;
}

async function doctor(s: Session, opts: DoctorOptions): Promise<void> {
  const { formatConfigError, loadAgentConfig } = await loadShared();
  let config: AgentConfig;
  try {
    config = await loadAgentConfig(opts.config);
  } catch (err) {
    throw usageError(formatConfigError(err));
  }
  // The SDK's credential provider must read the same IMDS the checks do.
  if (opts.imds !== defaultImdsUrl) process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = opts.imds;
  const checks = await runDoctor({
    config,
    imdsUrl: opts.imds,
    ...(opts.ec2Endpoint === undefined ? {} : { ec2Endpoint: opts.ec2Endpoint }),
    timeoutMs: 3_000,
  });
  const failed = checks.filter((c) => c.status === 'fail').length;
  const { vip } = config.cluster;
  const head = `cluster ${config.cluster.name}, node ${config.self}, VIP ${vip.address} (${vip.mode})`;
  if (s.json) {
    s.printJson({ ok: failed === 0, cluster: config.cluster.name, node: config.self, checks });
  } else {
    s.print(renderDoctor(head, checks, s.style));
  }
  if (failed > 0) throw new CliError(exitCodes.failed, '', 'check-failed');
}

/**
 * The checks as text. Their details quote what others answered (etcd members' names, versions and
 * errors, the EC2 API's and IMDS's answers): made plain text first (cleanStrings), so an escape
 * sequence in one cannot clear the operator's screen or retitle the window; only our marks are
 * painted afterwards.
 */
export function renderDoctor(head: string, untrusted: readonly Check[], style: Style): string {
  const checks = cleanStrings(untrusted);
  const failed = checks.filter((c) => c.status === 'fail').length;
  const lines = checks.map((c) => {
    const fix = c.fix !== undefined && c.status !== 'ok' ? `\n    ${c.status === 'fail' ? 'fix' : 'hint'}: ${c.fix}` : '';
    return `${markFor(c.status, style)} ${c.title}: ${c.detail}${fix}`;
  });
  const verdict = failed === 0 ? 'no problem found' : `${failed} problem${failed === 1 ? '' : 's'} found`;
  return `pgvip doctor: ${cleanText(head)}\n${lines.join('\n')}\n${verdict}`;
}

function markFor(status: Check['status'], style: Style): string {
  if (status === 'ok') return paint(style, ['green'], '✔');
  if (status === 'fail') return paint(style, ['red', 'bold'], '✘');
  return paint(style, ['yellow'], 'ℹ');
}

/** The kind of a config file by its top-level keys, for check-config without --kind. */
function guessKind(text: string): 'agent' | 'witness' | undefined {
  if (/^clusters[ \t]*:/m.test(text)) return 'witness';
  if (/^(cluster|self)[ \t]*:/m.test(text)) return 'agent';
  return undefined;
}

function describeAgent(config: AgentConfig): string {
  const { name, vip, witness } = config.cluster;
  return `cluster ${name}, node ${config.self}, VIP ${vip.address} (${vip.mode}), witness ${witness.host}:${witness.port}`;
}

function describeWitness(config: WitnessConfig): string {
  const names = config.clusters.map((c) => c.name).join(', ');
  const clusters = `${config.clusters.length} cluster${config.clusters.length === 1 ? '' : 's'} (${names})`;
  return `witness ${config.id}, ${clusters}, operator API ${config.operatorApi.host}:${config.operatorApi.port}`;
}
