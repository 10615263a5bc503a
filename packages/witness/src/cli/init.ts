// `pgvip init`: a starting config set for one cluster — agent-<node>.yaml for each database node,
// witness.yaml, and fresh secrets (cluster.key, operator.token, mode 0600) — from flags, or from
// answers on a terminal for what the flags leave out. Every file is checked by the schema the
// daemons load before anything is written, so what init writes passes `pgvip check-config`.
// Existing files are never replaced without --force: a second key would split the cluster.
// With --tls, also a small CA and a certificate per daemon (tls-certs.ts), and tls blocks that use them.
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { usageError } from './errors.js';
import { issueCertificates } from './tls-certs.js';

export interface InitAnswers {
  cluster?: string;
  /** "name=address", exactly two. */
  nodes: string[];
  /** "address" or "name=address". */
  witness?: string;
  vipMode?: string;
  vip?: string;
  interface?: string;
  routeTables: string[];
  /** "node=eni-..." */
  enis: string[];
  region?: string;
  /** Where the files will live on the hosts; the configs name the secrets there. */
  configDir: string;
  pgDataDir: string;
  pgBinDir: string;
  out?: string;
  force: boolean;
  /** Also write a CA and certificates under tls/, and turn TLS (mutual) on in every file. */
  tls?: boolean;
}

/** Asks one question (a terminal prompt in the CLI, scripted answers in tests); undefined: none. */
export type Ask = (question: string, defaultAnswer?: string) => Promise<string>;

export interface InitResult {
  readonly out: string;
  readonly files: readonly { path: string; mode: number; kind: 'agent' | 'witness' | 'secret' | 'certificate' }[];
  readonly clusterName: string;
  readonly nodes: readonly { name: string; address: string }[];
  readonly witness: { name: string; address: string };
}

const vipModes = ['secondary-ip', 'route-table'] as const;

/**
 * Questions on stderr, answers from stdin — only when stdin is a terminal (a script must pass
 * flags). One reader for the whole session, read as a queue of lines: answers typed (or pasted)
 * ahead of their question are kept, not dropped between questions. undefined: not a terminal.
 */
export function terminalAsk(): { ask: Ask; close: () => void } | undefined {
  if (process.stdin.isTTY !== true) return undefined;
  const rl = createInterface({ input: process.stdin, terminal: false });
  const lines = rl[Symbol.asyncIterator]();
  const ask: Ask = async (question, defaultAnswer) => {
    process.stderr.write(`${question}${defaultAnswer === undefined ? '' : ` [${defaultAnswer}]`}: `);
    const next = await lines.next();
    if (next.done === true) throw usageError('stdin closed before every question was answered; nothing was written');
    const answer = String(next.value).trim();
    return answer === '' ? (defaultAnswer ?? '') : answer;
  };
  return { ask, close: () => rl.close() };
}

function pair(text: string, flag: string, example: string): { name: string; value: string } {
  const m = /^([^=\s]+)=(\S+)$/.exec(text.trim());
  if (!m) throw usageError(`${flag} ${JSON.stringify(text)}: give NAME=VALUE, e.g. ${flag} ${example}`);
  return { name: m[1]!, value: m[2]! };
}

/** Fills in what the flags left out: from `ask`, or a usage error naming the missing flags. */
async function complete(answers: InitAnswers, ask: Ask | undefined): Promise<InitAnswers> {
  const a = { ...answers, nodes: [...answers.nodes], routeTables: [...answers.routeTables] };
  const missing: string[] = [];
  const need = async (
    flag: string,
    question: string,
    current: string | undefined,
    defaultAnswer?: string,
  ): Promise<string | undefined> => {
    if (current !== undefined) return current;
    if (ask === undefined) {
      if (defaultAnswer !== undefined) return defaultAnswer;
      missing.push(flag);
      return undefined;
    }
    const answer = await ask(question, defaultAnswer);
    return answer === '' ? undefined : answer;
  };
  a.cluster = await need('--cluster NAME', 'Cluster name (e.g. orders)', a.cluster);
  if (a.nodes.length > 2) throw usageError(`--node was given ${a.nodes.length} times: a cluster has exactly two database nodes`);
  const defaults = ['db-a', 'db-b'];
  for (let i = a.nodes.length; i < 2; i++) {
    if (ask === undefined) {
      missing.push(`--node NAME=ADDRESS (${2 - a.nodes.length} more)`);
      break;
    }
    const name = await ask(`Database node ${i + 1}: name`, defaults[i]);
    const address = await ask(`Database node ${i + 1} (${name}): private address of its agent and PostgreSQL`);
    a.nodes.push(`${name}=${address}`);
  }
  a.witness = await need('--witness-host ADDRESS', 'Witness: private address the agents reach it at', a.witness);
  a.vipMode = await need('--vip-mode MODE', `VIP mode (${vipModes.join(' or ')})`, a.vipMode, 'secondary-ip');
  a.vip = await need('--vip ADDRESS', 'VIP address clients connect to', a.vip);
  if (a.vipMode === 'route-table' && a.routeTables.length === 0) {
    const tables = await need('--route-table rtb-... (route-table mode)', 'Route table ids, comma-separated (e.g. rtb-0123456789abcdef0)', undefined);
    if (tables !== undefined) a.routeTables.push(tables);
  }
  if (missing.length > 0) {
    throw usageError(`stdin is not a terminal, so pgvip init asks nothing: pass ${missing.join(', ')} (see pgvip init --help)`);
  }
  return a;
}

/** A YAML plain scalar when it is one, else a JSON (= YAML double-quoted) string. */
const scalar = (value: string | number): string =>
  typeof value === 'number' || /^[A-Za-z0-9_./][A-Za-z0-9_./:@-]*$/.test(value) && !/^(true|false|null|yes|no|on|off|~)$/i.test(value) ? String(value) : JSON.stringify(value);

const indent = (lines: readonly string[], by: string) => lines.map((l) => (l === '' ? l : `${by}${l}`));

interface Plan {
  readonly cluster: string;
  readonly nodes: readonly { name: string; address: string; eni?: string }[];
  readonly witness: { name: string; address: string };
  readonly vipMode: string;
  readonly vip: string;
  readonly interface: string;
  readonly routeTables: readonly string[];
  readonly region?: string;
  readonly keyFile: string;
  readonly tokenFile: string;
  readonly pgDataDir: string;
  readonly pgBinDir: string;
  /** Where the certificates will be on the hosts (--tls), e.g. /etc/pgvip/tls. */
  readonly tlsDir?: string;
}

/** The file-level tls block of a daemon named `self` (agent or witness file), when --tls. */
function tlsLines(p: Plan, self: string): string[] {
  if (p.tlsDir === undefined) return [];
  const f = (name: string) => scalar(path.posix.join(p.tlsDir!, name));
  return [
    'tls:                      # HTTPS between agents and witness (HMAC stays inside); SIGHUP reloads the files',
    `  certFile: ${f(`${self}.crt`)}`,
    `  keyFile: ${f(`${self}.key`)}   # mode 0600, owned by the daemon's user`,
    `  caFile: ${f('ca.crt')}`,
    '  mutual: true            # clients must present a certificate of this CA too',
  ];
}

/** The `cluster:` block, the same in every agent file and (as a clusters: entry) in witness.yaml. */
function clusterLines(p: Plan): string[] {
  const vip = [
    `mode: ${scalar(p.vipMode)}`,
    `address: ${scalar(p.vip)}${p.vipMode === 'secondary-ip' ? '   # must be free in the subnet: no instance may own it' : '   # outside the VPC CIDR; each route table needs its /32 route'}`,
    `interface: ${scalar(p.interface)}`,
    ...(p.routeTables.length > 0 ? [`routeTableIds: [${p.routeTables.map(scalar).join(', ')}]`] : []),
    ...(p.region === undefined ? [] : [`region: ${scalar(p.region)}`]),
    'discovery: imds   # instance, ENI, region and subnet from IMDSv2; configured values win',
  ];
  return [
    `name: ${scalar(p.cluster)}`,
    'nodes:',
    ...p.nodes.flatMap((n) => [
      `  - id: ${scalar(n.name)}`,
      `    agent: { host: ${scalar(n.address)}, port: 8008 }`,
      '    postgres:',
      `      host: ${scalar(n.address)}`,
      '      port: 5432',
      '      user: pgvip            # LOGIN REPLICATION, may run pg_promote() (docs/deploy.md)',
      '      # passwordFile: /etc/pgvip/pg-password   # if that role logs in with a password (mode 0600)',
      `      dataDir: ${scalar(p.pgDataDir)}`,
      `      binDir: ${scalar(p.pgBinDir)}`,
      ...(n.eni === undefined ? [] : [`    vip: { eniId: ${scalar(n.eni)} }`]),
    ]),
    'witness:',
    `  id: ${scalar(p.witness.name)}`,
    `  host: ${scalar(p.witness.address)}`,
    '  port: 8009',
    'vip:',
    ...indent(vip, '  '),
    'replication:',
    '  mode: sync              # no acknowledged write is lost by an automatic failover',
    'fencing:',
    '  mode: read-only',
    '# timings: left at their defaults (docs/configuration.md before changing any)',
    'auth:',
    `  keyFile: ${scalar(p.keyFile)}   # the same 0600 file on both nodes and the witness`,
  ];
}

function agentYaml(p: Plan, self: string, stamp: string): string {
  return [
    `# pgvip agent on ${self}: copy to ${self} as ${path.posix.join(path.posix.dirname(p.keyFile), 'agent.yaml')}`,
    `# Written by \`pgvip init\` ${stamp}. The cluster: block is the same in every agent file and in`,
    '# witness.yaml; only self differs. Every field: docs/configuration.md.',
    '',
    `self: ${scalar(self)}`,
    'listen:',
    '  host: 0.0.0.0',
    'stateDir: /var/lib/pgvip',
    'logLevel: info',
    ...tlsLines(p, self),
    '',
    'cluster:',
    ...indent(clusterLines(p), '  '),
    '',
  ].join('\n');
}

function witnessYaml(p: Plan, stamp: string): string {
  const [first, ...rest] = clusterLines(p);
  return [
    `# pgvip witness: copy to the witness host as ${path.posix.join(path.posix.dirname(p.tokenFile), 'witness.yaml')}`,
    `# Written by \`pgvip init\` ${stamp}. The clusters: entry is the agents' cluster: block.`,
    '',
    `id: ${scalar(p.witness.name)}`,
    'listen:',
    '  host: 0.0.0.0',
    '  port: 8009',
    'stateDir: /var/lib/pgvip',
    'logLevel: info',
    ...tlsLines(p, p.witness.name),
    '',
    'operatorApi:',
    '  host: 127.0.0.1',
    '  port: 8010',
    `  tokenFile: ${scalar(p.tokenFile)}   # pgvip --token-file ${p.tokenFile} status`,
    ...(p.tlsDir === undefined
      ? []
      : [
          `  tls:                    # pgvip --witness https://127.0.0.1:8010 --ca-file ${path.posix.join(p.tlsDir, 'ca.crt')} status`,
          `    certFile: ${scalar(path.posix.join(p.tlsDir, `${p.witness.name}.crt`))}   # also names 127.0.0.1 and localhost`,
          `    keyFile: ${scalar(path.posix.join(p.tlsDir, `${p.witness.name}.key`))}`,
        ]),
    '',
    'clusters:',
    `  - ${first}`,
    ...indent(rest, '    '),
    '',
  ].join('\n');
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw usageError(`${file}: cannot be examined (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

/**
 * Writes `text` to `file` with `mode` through a new file renamed into place: a replaced file
 * (--force) gets a fresh inode with exactly this mode, never a 0644 file's old permissions.
 */
async function writeNew(file: string, text: string, mode: number): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(temp, text, { mode, flag: 'wx' });
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw usageError(`cannot write ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

export async function runInit(given: InitAnswers, ask: Ask | undefined, now = new Date()): Promise<InitResult> {
  const a = await complete(given, ask);
  const nodes = a.nodes.map((n) => pair(n, '--node', 'db-a=10.0.1.11')).map(({ name, value }) => ({ name, address: value }));
  const witness = a.witness!.includes('=') ? (({ name, value }) => ({ name, address: value }))(pair(a.witness!, '--witness-host', 'witness=10.0.2.20')) : { name: 'witness', address: a.witness! };
  const enis = new Map<string, string>();
  for (const text of a.enis) {
    const { name, value } = pair(text, '--eni', `${nodes[0]?.name ?? 'db-a'}=eni-0123456789abcdef0`);
    if (!nodes.some((n) => n.name === name)) throw usageError(`--eni ${text}: no node ${name}; the nodes are ${nodes.map((n) => n.name).join(', ')}`);
    enis.set(name, value);
  }
  if (!(vipModes as readonly string[]).includes(a.vipMode!)) throw usageError(`--vip-mode ${a.vipMode}: give ${vipModes.join(' or ')}`);
  const routeTables = a.routeTables.flatMap((t) => t.split(',')).map((t) => t.trim()).filter((t) => t !== '');
  if (a.vipMode === 'secondary-ip' && routeTables.length > 0) throw usageError('--route-table is for --vip-mode route-table; secondary-ip mode moves the address between the nodes\' ENIs');
  if (!path.isAbsolute(a.configDir)) throw usageError(`--config-dir ${a.configDir}: give the absolute directory the files will have on the hosts, e.g. /etc/pgvip`);
  const plan: Plan = {
    cluster: a.cluster!,
    nodes: nodes.map((n) => ({ ...n, ...(enis.has(n.name) ? { eni: enis.get(n.name)! } : {}) })),
    witness,
    vipMode: a.vipMode!,
    vip: a.vip!,
    interface: a.interface ?? 'eth0',
    routeTables,
    ...(a.region === undefined ? {} : { region: a.region }),
    keyFile: path.posix.join(a.configDir, 'cluster.key'),
    tokenFile: path.posix.join(a.configDir, 'operator.token'),
    pgDataDir: a.pgDataDir,
    pgBinDir: a.pgBinDir,
    ...(a.tls === true ? { tlsDir: path.posix.join(a.configDir, 'tls') } : {}),
  };
  const out = path.resolve(a.out ?? `pgvip-${plan.cluster}`);
  const stamp = `on ${now.toISOString().slice(0, 10)}`;
  const configs = [
    ...plan.nodes.map((n) => ({ name: `agent-${n.name}.yaml`, kind: 'agent' as const, text: agentYaml(plan, n.name, stamp) })),
    { name: 'witness.yaml', kind: 'witness' as const, text: witnessYaml(plan, stamp) },
  ];
  // The daemons' own schema, before a single file is written: an answer it refuses is reported
  // with the field and the fix, and nothing is left half-written. (Node ids are DNS labels there,
  // so agent-<id>.yaml is a plain file name once they pass.)
  const { formatConfigError, isPgvipError, parseConfigText, formatKeyFile, generateKey } = await import('@pgvip/shared');
  for (const c of configs) {
    try {
      parseConfigText(c.text, c.kind, c.name);
    } catch (err) {
      if (!isPgvipError(err)) throw err;
      throw usageError(`these answers do not make a valid ${c.kind} config:\n${formatConfigError(err)}`);
    }
  }
  const files = [
    ...configs.map((c) => ({ path: path.join(out, c.name), text: c.text, mode: 0o644, kind: c.kind })),
    { path: path.join(out, 'cluster.key'), text: formatKeyFile(generateKey()), mode: 0o600, kind: 'secret' as const },
    { path: path.join(out, 'operator.token'), text: `${randomBytes(32).toString('hex')}\n`, mode: 0o600, kind: 'secret' as const },
    ...(plan.tlsDir === undefined ? [] : await certificateFiles(plan, out)),
  ];
  if (!a.force) {
    const taken = [];
    for (const f of files) if (await exists(f.path)) taken.push(f.path);
    if (taken.length > 0) throw usageError(`${taken.join(', ')} already exist${taken.length === 1 ? 's' : ''}; nothing was written. Choose another --out, or pass --force to replace them (a new cluster.key must then reach every host of the cluster)`);
  }
  try {
    await mkdir(out, { recursive: true, mode: 0o700 });
    if (plan.tlsDir !== undefined) await mkdir(path.join(out, 'tls'), { recursive: true, mode: 0o700 });
  } catch (err) {
    throw usageError(`cannot create ${out} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  for (const f of files) await writeNew(f.path, f.text, f.mode);
  return {
    out,
    files: files.map(({ path: p, mode, kind }) => ({ path: p, mode, kind })),
    clusterName: plan.cluster,
    nodes,
    witness,
  };
}

/**
 * The CA and one certificate per daemon, as files under out/tls. Each node's certificate names its
 * address (what the witness and the other node dial); the witness's also names 127.0.0.1 and
 * localhost, for the operator API on loopback. The CA key stays with the operator, never on a host.
 */
async function certificateFiles(plan: Plan, out: string) {
  const hosts = [
    ...plan.nodes.map((n) => ({ name: n.name, addresses: [n.address] })),
    { name: plan.witness.name, addresses: [plan.witness.address, '127.0.0.1', 'localhost'] },
  ];
  let set;
  try {
    set = await issueCertificates(hosts, { cluster: plan.cluster });
  } catch (err) {
    throw usageError(`--tls: ${(err as Error).message}; nothing was written`);
  }
  const dir = path.join(out, 'tls');
  const kind = 'certificate' as const;
  return [
    { path: path.join(dir, 'ca.crt'), text: set.caCert, mode: 0o644, kind },
    { path: path.join(dir, 'ca.key'), text: set.caKey, mode: 0o600, kind: 'secret' as const },
    ...set.hosts.flatMap((h) => [
      { path: path.join(dir, `${h.name}.crt`), text: h.cert, mode: 0o644, kind },
      { path: path.join(dir, `${h.name}.key`), text: h.key, mode: 0o600, kind: 'secret' as const },
    ]),
  ];
}

/** What to do next, for a person. */
export function nextSteps(r: InitResult, configDir: string): string {
  const rel = (f: string) => path.relative(process.cwd(), f) || f;
  const lines = [
    `pgvip init: wrote the config set of cluster ${r.clusterName} to ${rel(r.out)}:`,
    ...r.files.map((f) => `  ${rel(f.path)} (${f.mode.toString(8).padStart(4, '0')})`),
    'next:',
    ...r.nodes.map((n) => `  on ${n.name} (${n.address}): ${path.join(configDir, 'agent.yaml')} from agent-${n.name}.yaml, and cluster.key owned by postgres, mode 0600`),
    `  on the witness (${r.witness.address}): ${path.join(configDir, 'witness.yaml')}, cluster.key and operator.token, owned by pgvip, mode 0600`,
    `  then on each host: pgvip check-config ${path.join(configDir, '<file>')}, and start the daemon (docs/deploy.md)`,
    '  keep cluster.key and operator.token secret: copy them over a secure channel and delete this copy',
  ];
  if (r.files.some((f) => f.kind === 'certificate')) {
    lines.push(
      `  TLS: copy tls/ca.crt and each host's own tls/<name>.crt and .key (mode 0600, owned by its daemon's user) to ${path.join(configDir, 'tls')} on that host`,
      '  keep tls/ca.key off the hosts (it issues certificates the cluster trusts); renew with a new CA set, then SIGHUP every daemon',
    );
  }
  return lines.join('\n');
}
