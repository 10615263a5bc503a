// The `pgvip` command line: commander wiring, global options, and one action per command. Every
// action either returns normally (exit 0) or throws a CliError; runCli() turns both into output
// and an exit code, so no command can leave the process with a stack trace or a stray code.
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { AgentConfig, WitnessConfig } from '@pgvip/shared';
import { cleanText, terminalSafeJson } from '@pgvip/shared/text';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { OperatorClient, parseWitnessUrl, type ClusterView } from './api.js';
import { checkHost } from './check-config.js';
import { confirm } from './confirm.js';
import { runDoctor, type Check } from './doctor.js';
import { nextSteps, runInit, terminalAsk } from './init.js';
import { CliError, exitCodes, usageError, type ExitCode } from './errors.js';
import { paint, styleFor, type Style } from './format.js';
import { defaultImdsUrl } from './imds.js';
import { renderCluster, renderHistory } from './render.js';
import { parseAt } from './when.js';

export const defaultWitnessUrl = 'http://127.0.0.1:8010';

/** Where deploy/install.sh and the .deb's examples put the operator token on the witness host. */
export const defaultTokenFile = '/etc/pgvip/operator.token';

/**
 * The token file the CLI reads, and how to name it in messages: --token-file or PGVIP_TOKEN_FILE
 * when given; else the installed default when it exists, so `sudo pgvip status` on the witness host
 * needs no flag; else none (the witness then answers 401 and the CLI says how to pass one).
 */
export function pickTokenFile(given: string | undefined, fromEnv: boolean, defaultExists: boolean): { file: string; source: string; option: string } | undefined {
  if (given !== undefined) return fromEnv ? { file: given, source: `PGVIP_TOKEN_FILE (${given})`, option: 'PGVIP_TOKEN_FILE' } : { file: given, source: given, option: '--token-file' };
  if (defaultExists) return { file: defaultTokenFile, source: `${defaultTokenFile} (the default; --token-file to use another)`, option: 'the default token file (pass --token-file to use another)' };
  return undefined;
}

/** This package's version (src/cli and dist/cli both sit two levels under the package root). */
export const pgvipVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/**
 * The shared package (config loader, secret files) is loaded only by the commands that read a
 * file: it brings zod, yaml and the peer transport, and `pgvip status` should not wait for them.
 */
const shared = () => import('@pgvip/shared');

interface GlobalOptions {
  witness: string;
  tokenFile?: string;
  cluster?: string;
  json?: boolean;
}

/** Where the output goes; tests and main.ts pass process streams. */
export interface CliIo {
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
}

class Session {
  readonly json: boolean;
  readonly style: Style;
  readonly #io: CliIo;
  readonly #global: GlobalOptions;
  readonly #tokenFromEnv: boolean;
  #client: OperatorClient | undefined;

  constructor(io: CliIo, global: GlobalOptions, tokenFromEnv: boolean) {
    this.#io = io;
    this.#global = global;
    this.#tokenFromEnv = tokenFromEnv;
    this.json = global.json === true;
    this.style = styleFor(io.stdout);
  }

  print(text: string): void {
    this.#io.stdout.write(`${text}\n`);
  }

  printJson(value: unknown): void {
    this.#io.stdout.write(`${terminalSafeJson(value)}\n`);
  }

  /** The operator API client, made on first use: check-config and doctor never need one. */
  async client(): Promise<OperatorClient> {
    if (this.#client) return this.#client;
    const baseUrl = parseWitnessUrl(this.#global.witness);
    let token: string | undefined;
    const picked = pickTokenFile(this.#global.tokenFile, this.#tokenFromEnv, existsSync(defaultTokenFile));
    if (picked !== undefined) {
      const { isPgvipError, readSecretFile } = await shared();
      try {
        token = await readSecretFile(picked.file, picked.option);
      } catch (err) {
        throw usageError(isPgvipError(err) ? err.detail : String(err));
      }
    }
    this.#client = new OperatorClient({ baseUrl, token, tokenSource: picked?.source });
    return this.#client;
  }

  async close(): Promise<void> {
    await this.#client?.close();
  }

  /** The cluster a command acts on: --cluster, or the witness's only one. */
  async cluster(): Promise<ClusterView> {
    const client = await this.client();
    const name = this.#global.cluster;
    if (name !== undefined) {
      const view = await client.cluster(name);
      if (view !== undefined) return view;
      const names = (await client.clusters()).map((c) => c.cluster);
      throw usageError(`no cluster "${name}" on the witness at ${client.baseUrl}; it serves: ${names.join(', ') || 'none'}`);
    }
    const all = await client.clusters();
    if (all.length === 1) return all[0]!;
    if (all.length === 0) throw new CliError(exitCodes.failed, `the witness at ${client.baseUrl} serves no cluster`);
    throw usageError(`the witness serves ${all.length} clusters (${all.map((c) => c.cluster).join(', ')}): choose one with --cluster NAME`);
  }

  async allClusters(): Promise<ClusterView[]> {
    return this.#global.cluster === undefined ? (await this.client()).clusters() : [await this.cluster()];
  }
}

function positiveInteger(name: string, max: number) {
  return (text: string): number => {
    if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}.`);
    return Number(text);
  };
}

/** --to NODE must name a node of the cluster; a typo must not reach the witness. */
function checkNode(view: ClusterView, node: string | undefined): void {
  if (node !== undefined && !view.nodes.some((n) => n.node === node)) {
    throw usageError(`--to ${node}: no such node in cluster ${view.cluster}; its nodes are ${view.nodes.map((n) => n.node).join(', ')}`);
  }
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

export function buildProgram(io: CliIo, run: (action: (session: Session) => Promise<void>, command: Command) => Promise<void>): Command {
  const program = new Command('pgvip')
    .description('Operate pgvip clusters through their witness: state, history, switchover, maintenance; and check config files and a node\'s AWS setup.')
    .addOption(new Option('--witness <url>', 'operator API of the witness').env('PGVIP_WITNESS_URL').default(defaultWitnessUrl))
    .addOption(new Option('--token-file <path>', `file holding the operator API token (mode 0600; default ${defaultTokenFile} when it exists)`).env('PGVIP_TOKEN_FILE'))
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

  program
    .command('status')
    .description('one row per node: role, term, lease, lag, timeline, eligibility, VIP holder; maintenance shown loudly')
    .action((_opts, cmd: Command) =>
      run(async (s) => {
        const views = await s.allClusters();
        if (s.json) s.printJson({ clusters: views });
        else s.print(views.map((v) => renderCluster(v, s.style)).join('\n\n'));
      }, cmd),
    );

  program
    .command('history')
    .description('the cluster\'s events, newest first')
    .option('--limit <n>', 'how many events (1-1000)', positiveInteger('--limit', 1000), 20)
    .option('--before <id>', 'only events older than this event id (to page back)', positiveInteger('--before', Number.MAX_SAFE_INTEGER))
    .action((opts: { limit: number; before?: number }, cmd: Command) =>
      run(async (s) => {
        const view = await s.cluster();
        const events = await (await s.client()).history(view.cluster, opts.limit, opts.before);
        if (s.json) s.printJson({ cluster: view.cluster, events });
        else s.print(renderHistory(view.cluster, events, s.style));
      }, cmd),
    );

  program
    .command('switchover')
    .description('planned, lossless change of primary: fence, wait for the standby to catch up, hand over')
    .option('--to <node>', 'the node to promote (default: the standby)')
    .option('--at <time>', 'when: HH:MM (next occurrence, local time) or an ISO 8601 date-time (default: now)')
    .option('-y, --yes', 'do not ask for confirmation (required when stdin is not a terminal)')
    .action((opts: { to?: string; at?: string; yes?: boolean }, cmd: Command) =>
      run(async (s) => {
        const at = opts.at === undefined ? undefined : parseAt(opts.at);
        const view = await s.cluster();
        checkNode(view, opts.to);
        if (opts.to !== undefined && opts.to === view.primary) {
          throw new CliError(exitCodes.failed, `${opts.to} is already the primary of ${view.cluster}; nothing to switch over`, 'refused');
        }
        const others = view.nodes.filter((n) => n.node !== view.primary);
        const target = opts.to ?? (others.length === 1 ? others[0]!.node : undefined);
        if (!opts.yes) {
          const when = at === undefined ? 'now' : `at ${at.toString()}`;
          await confirm(
            `Switch over cluster ${view.cluster} from ${view.primary ?? '(no primary)'} to ${target ?? '(the witness chooses)'} ${when}? Writes pause briefly; no acknowledged write is lost.`,
            'switchover',
          );
        }
        const reply = await (await s.client()).command(view.cluster, 'switchover', { ...(target === undefined ? {} : { to: target }), ...(at === undefined ? {} : { at: at.toISOString() }) });
        report(s, view.cluster, 'switchover', reply);
      }, cmd),
    );

  program
    .command('failover')
    .description('MANUAL failover that may lose acknowledged writes: only when automatic failover cannot happen')
    .option('--to <node>', 'the node to promote (default: the standby)')
    .option('--force', 'required: promote without the safety checks of an automatic failover')
    .option('--accept-data-loss', 'required: acknowledge that writes the promoted node has not received are lost')
    .action((opts: { to?: string; force?: boolean; acceptDataLoss?: boolean }, cmd: Command) =>
      run(async (s) => {
        if (!opts.force || !opts.acceptDataLoss) {
          const missing = [!opts.force && '--force', !opts.acceptDataLoss && '--accept-data-loss'].filter(Boolean).join(' and ');
          throw usageError(
            `refusing a manual failover without ${missing}. It promotes a node without the checks of an automatic failover, and writes ` +
              'that node has not received are LOST. Use it only when automatic failover cannot happen (witness lost, standby ineligible); ' +
              'for a planned change of primary without loss, use: pgvip switchover',
          );
        }
        const view = await s.cluster();
        checkNode(view, opts.to);
        const reply = await (await s.client()).command(view.cluster, 'failover', { ...(opts.to === undefined ? {} : { to: opts.to }), acceptDataLoss: true });
        report(s, view.cluster, 'failover', reply);
      }, cmd),
    );

  program
    .command('maintenance')
    .description('pause (on) or resume (off) automatic failover for the cluster')
    .addArgument(new Argument('<state>', 'on or off').choices(['on', 'off']))
    .action((state: 'on' | 'off', _opts, cmd: Command) =>
      run(async (s) => {
        const view = await s.cluster();
        const reply = await (await s.client()).command(view.cluster, 'maintenance', { on: state === 'on' });
        report(s, view.cluster, 'maintenance', reply);
      }, cmd),
    );

  program
    .command('check-config')
    .description('validate an agent or witness config file, then check this host as the daemon does before it starts (key, token, password and secret files, state directory); print every problem (exit 2 when any)')
    .argument('<file>', 'the YAML file')
    .addOption(new Option('--kind <kind>', 'agent or witness (default: guessed from the top-level keys)').choices(['agent', 'witness']))
    .option('--no-host-checks', 'check the file only, not the files and directories it names on this host (for a file meant for another host)')
    .option('--user <name>', 'as root: check the files for this user (default: the daemon\'s, postgres for an agent file, pgvip for a witness file)')
    .action((file: string, opts: { kind?: 'agent' | 'witness'; hostChecks: boolean; user?: string }, cmd: Command) =>
      run(async (s) => {
        let text: string;
        try {
          text = await readFile(file, 'utf8');
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          throw usageError(`${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : String(err)}`);
        }
        const kind = opts.kind ?? guessKind(text);
        if (kind === undefined) throw usageError(`${file}: cannot tell an agent file (top-level cluster:) from a witness file (top-level clusters:); pass --kind agent or --kind witness`);
        const { formatConfigError, isPgvipError, parseConfigText } = await shared();
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
            s.printJson({ file, kind, valid: false, code: host.problems[0]!.code, problems: host.problems.flatMap((p) => p.detail.split('\n')), codes: host.problems.map((p) => p.code), checkedAs: host.user.name });
          } else {
            s.print(`${markFor('fail', s.style)} ${file} is a valid ${kind} config, but pgvip-${kind} would refuse to start on this host (${count}; ${checkedAs}):\n${host.problems.map(formatConfigError).join('\n')}`);
          }
          throw new CliError(exitCodes.usage, '', 'invalid-config');
        }
        if (s.json) s.printJson({ file, kind, valid: true, summary, checkedAs: host.user.name });
        else s.print(`${markFor('ok', s.style)} ${file} is a valid ${kind} config: ${summary}\n  and this host is ready for it: key, token, password and secret files, state directory (${checkedAs})`);
      }, cmd),
    );

  const collect = (value: string, previous: string[]) => [...previous, value];
  program
    .command('init')
    .description('write a starting config set for one cluster: agent-<node>.yaml for both nodes, witness.yaml, and fresh cluster.key and operator.token (0600); asks on a terminal for what the flags leave out. The cluster name comes from --cluster')
    .option('--node <name=address>', 'a database node and its private address (twice)', collect, [])
    .option('--witness-host <[name=]address>', 'the address the agents reach the witness at (name: default witness)')
    .addOption(new Option('--vip-mode <mode>', 'how the VIP moves (default secondary-ip)').choices(['secondary-ip', 'route-table']))
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
    .action((opts: { node: string[]; witnessHost?: string; vipMode?: string; vip?: string; interface?: string; routeTable: string[]; eni: string[]; region?: string; configDir: string; pgDataDir: string; pgBinDir: string; out?: string; force?: boolean }, cmd: Command) =>
      run(async (s) => {
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
        }, terminal?.ask).finally(() => terminal?.close());
        if (s.json) s.printJson({ cluster: result.clusterName, out: result.out, files: result.files.map((f) => ({ ...f, mode: f.mode.toString(8).padStart(4, '0') })) });
        else s.print(nextSteps(result, opts.configDir));
      }, cmd),
    );

  program
    .command('doctor')
    .description('on a database node: check IMDS, the ENI, route tables, the VIP\'s subnet, IAM permissions and PostgreSQL\'s commit guard (exit 1 if any check fails)')
    .requiredOption('--config <file>', 'the agent config file, e.g. /etc/pgvip/agent.yaml')
    .option('--imds <url>', 'instance metadata service', defaultImdsUrl)
    .option('--ec2-endpoint <url>', 'EC2 API endpoint (default: the region\'s, or AWS_ENDPOINT_URL_EC2)')
    .action((opts: { config: string; imds: string; ec2Endpoint?: string }, cmd: Command) =>
      run(async (s) => {
        const { formatConfigError, loadAgentConfig } = await shared();
        let config: AgentConfig;
        try {
          config = await loadAgentConfig(opts.config);
        } catch (err) {
          throw usageError(formatConfigError(err));
        }
        // The SDK's credential provider must read the same IMDS the checks do.
        if (opts.imds !== defaultImdsUrl) process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = opts.imds;
        const checks = await runDoctor({ config, imdsUrl: opts.imds, ...(opts.ec2Endpoint === undefined ? {} : { ec2Endpoint: opts.ec2Endpoint }), timeoutMs: 3_000 });
        const failed = checks.filter((c) => c.status === 'fail').length;
        const head = `cluster ${config.cluster.name}, node ${config.self}, VIP ${config.cluster.vip.address} (${config.cluster.vip.mode})`;
        if (s.json) {
          s.printJson({ ok: failed === 0, cluster: config.cluster.name, node: config.self, checks });
        } else {
          const lines = checks.map((c) => `${markFor(c.status, s.style)} ${c.title}: ${c.detail}${c.fix !== undefined && c.status !== 'ok' ? `\n    ${c.status === 'fail' ? 'fix' : 'hint'}: ${c.fix}` : ''}`);
          const verdict = failed === 0 ? 'no problem found' : `${failed} problem${failed === 1 ? '' : 's'} found`;
          s.print(`pgvip doctor: ${head}\n${lines.join('\n')}\n${verdict}`);
        }
        if (failed > 0) throw new CliError(exitCodes.failed, '', 'check-failed');
      }, cmd),
    );

  return program;
}

function report(s: Session, cluster: string, command: string, reply: { ok: boolean; message: string }): void {
  if (s.json) s.printJson({ cluster, command, ...reply });
  else s.print(`${reply.ok ? '✔' : '✘'} ${command} ${cluster}: ${cleanText(reply.message, { multiline: true })}`);
  if (!reply.ok) throw new CliError(exitCodes.failed, '', 'refused');
}

function describeAgent(config: AgentConfig): string {
  return `cluster ${config.cluster.name}, node ${config.self}, VIP ${config.cluster.vip.address} (${config.cluster.vip.mode}), witness ${config.cluster.witness.host}:${config.cluster.witness.port}`;
}

function describeWitness(config: WitnessConfig): string {
  const names = config.clusters.map((c) => c.name).join(', ');
  return `witness ${config.id}, ${config.clusters.length} cluster${config.clusters.length === 1 ? '' : 's'} (${names}), operator API ${config.operatorApi.host}:${config.operatorApi.port}`;
}

/** Parses argv, runs the command, prints any error, and returns the exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<ExitCode> {
  let session: Session | undefined;
  let exitCode: ExitCode = exitCodes.ok;
  const fail = (err: unknown) => {
    const error = err instanceof CliError ? err : new CliError(exitCodes.failed, `unexpected error: ${err instanceof Error ? err.message : String(err)}`, 'internal');
    exitCode = error.exitCode;
    if (error.message === '') return; // the command has printed its own verdict
    // A message may quote the witness's (or whatever answers at its URL's) words: plain text only.
    if (session?.json) io.stdout.write(`${terminalSafeJson({ error: { code: error.code, message: error.message, exitCode: error.exitCode } })}\n`);
    else io.stderr.write(`pgvip: ${cleanText(error.message, { multiline: true, maxChars: 4000 })}\n`);
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
