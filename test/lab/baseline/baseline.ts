// The baseline in the lab: the same hosts, PostgreSQL, EC2 emulator and writer probe, but instead of
// pgvip's agents and witness, the shell loop of failover-loop.sh runs on the standby (started by the
// lab's supervisor, like a systemd unit without Restart=, since the loop exits after its one failover).
//
// What an operator does around it is here too, and only here: the one-time VIP assignment at setup,
// and after a failover the manual repair (pg_rewind of the old primary, pointing it at the new one,
// naming it the synchronous standby, restarting the loop on the new standby). The bench uses that to
// start every run from a healthy pair; the loop itself never does any of it.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { mustRunOnHost, runOnHost } from '../exec.js';
import type { Lab } from '../lab.js';
import { pgBinDir, postmasterPid, startServer, stopServer, waitForStreaming } from '../postgres.js';
import { Service } from '../supervisor.js';
import { dbNodes, ec2Endpoint, imdsEndpoint, otherNode, type DbNode } from '../topology.js';
import type { HealthyCluster } from '../checkers.js';

const script = path.join(path.dirname(new URL(import.meta.url).pathname), 'failover-loop.sh');
const cleanPath = '/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Environment of the AWS CLI on `node`: no keys and no user config of the machine; the CLI takes the
 * host's instance-role credentials from the host's IMDS, as it would on an instance.
 */
export function awsEnv(lab: Pick<Lab, 'topology' | 'dir'>, node: DbNode): Record<string, string> {
  const t = lab.topology;
  return {
    PATH: cleanPath,
    HOME: path.join(lab.dir, 'hosts', node),
    // With the slash: botocore appends `latest/…` to it, as to its default http://169.254.169.254/.
    AWS_EC2_METADATA_SERVICE_ENDPOINT: `${imdsEndpoint(t, node)}/`,
    AWS_DEFAULT_REGION: t.region,
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_PAGER: '',
  };
}

/** The operator's one-time setup: the VIP on the primary's ENI (real AWS CLI) and on its interface. */
async function assignVip(lab: Lab, node: DbNode): Promise<void> {
  const t = lab.topology;
  await mustRunOnHost(node, ['/usr/bin/aws', 'ec2', 'assign-private-ip-addresses', '--network-interface-id', t.ec2[node].eniId, '--private-ip-addresses', t.vip.address, '--allow-reassignment', '--endpoint-url', ec2Endpoint(t)], {
    env: awsEnv(lab, node),
    cgroup: false,
    timeoutMs: 60_000,
  });
  await runOnHost(node, ['ip', 'addr', 'add', `${t.vip.address}/${t.vip.prefixLength}`, 'dev', 'eth0'], { cgroup: false });
}

/** Starts the loop on `standby`, watching `primary`. */
export async function startBaselineLoop(
  lab: Lab,
  roles: { primary: DbNode; standby: DbNode; initialVip?: boolean },
): Promise<void> {
  const t = lab.topology;
  if (roles.initialVip) await assignVip(lab, roles.primary);
  await lab.baseline?.stop();
  lab.baseline = new Service({
    reaper: lab.reaper,
    name: `baseline ${roles.standby}`,
    host: roles.standby,
    argv: ['/bin/sh', script],
    env: {
      ...awsEnv(lab, roles.standby),
      PRIMARY_ADDR: t.hosts[roles.primary].address,
      VIP: t.vip.address,
      VIP_PREFIX: String(t.vip.prefixLength),
      PGDATA: lab.pg[roles.standby].dataDir,
      PGBIN: pgBinDir,
      EC2_ENDPOINT: ec2Endpoint(t),
      IMDS_ENDPOINT: imdsEndpoint(t, roles.standby),
    },
    logFile: path.join(lab.dir, 'logs', 'baseline.log'),
    restart: false,
  });
  lab.baseline.start();
}

interface NodeState {
  readonly node: DbNode;
  readonly up: boolean;
  readonly inRecovery: boolean;
  readonly writable: boolean;
}

async function nodeState(lab: Lab, node: DbNode): Promise<NodeState> {
  try {
    const [row] = await lab.emulator.sql(lab.topology.hosts[node].address, "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')", [], 2_000);
    const inRecovery = row?.[0] === true;
    return { node, up: true, inRecovery, writable: !inRecovery && row?.[1] === 'off' };
  } catch {
    return { node, up: false, inRecovery: false, writable: false };
  }
}

/** Which servers accept writes right now, asked directly (not through the VIP): two means split brain. */
export async function writableServers(lab: Lab): Promise<DbNode[]> {
  const states = await Promise.all(dbNodes.map((n) => nodeState(lab, n)));
  return states.filter((s) => s.writable).map((s) => s.node);
}

/** Healthy for the baseline: one writable primary with the VIP, the other streaming from it, the loop running. */
export async function baselineProblems(lab: Lab): Promise<{ problems: string[]; healthy: HealthyCluster | null }> {
  const states = await Promise.all(dbNodes.map((n) => nodeState(lab, n)));
  const vipNode = await lab.emulator.vipNode();
  const problems: string[] = [];
  const writable = states.filter((s) => s.writable);
  if (writable.length !== 1) problems.push(`${writable.length} writable servers (${states.map((s) => `${s.node}: ${s.up ? (s.inRecovery ? 'standby' : 'primary') : 'down'}`).join(', ')})`);
  const primary = writable[0]?.node;
  if (primary === undefined) return { problems, healthy: null };
  const standby = otherNode(primary);
  if (vipNode !== primary) problems.push(`the VIP routes to ${vipNode ?? 'nowhere'}, not to ${primary}`);
  try {
    const rows = await lab.emulator.sql(lab.topology.hosts[primary].address, 'SELECT state, sync_state FROM pg_stat_replication WHERE application_name = $1', [standby], 2_000);
    if (rows[0]?.[0] !== 'streaming') problems.push(`${standby} does not stream from ${primary}`);
  } catch (err) {
    problems.push(`cannot ask ${primary}: ${(err as Error).message}`);
  }
  if (!lab.baseline?.running) problems.push('the baseline loop is not running');
  return { problems, healthy: problems.length === 0 ? { primary, standby, standbys: [standby], term: 0 } : null };
}

/**
 * The operator's repair after a run, so the next run starts from a healthy pair: the node the VIP
 * routes to is the primary; the other one is rewound onto it and restarted as its synchronous
 * standby (or, when no failover happened, simply started again); then the loop runs on the standby.
 */
export async function repairBaseline(lab: Lab): Promise<HealthyCluster> {
  await lab.baseline?.stop();
  const t = lab.topology;
  const vipNode = await lab.emulator.vipNode();
  const primary: DbNode = vipNode ?? 'db-a';
  const old = otherNode(primary);
  const primaryState = await nodeState(lab, primary);
  if (!primaryState.up) {
    // No failover happened (the loop never noticed, e.g. PostgreSQL died on a live host): restart it.
    if (postmasterPid(lab.pg[primary]) === null) await startServer(lab.pg[primary], lab.reaper);
  } else if (primaryState.inRecovery) {
    throw new Error(`the VIP routes to ${primary}, which is still a standby: the baseline left no primary`);
  }
  const oldState = await nodeState(lab, old);
  if (!oldState.up || !oldState.inRecovery) {
    // A second primary (split brain) or a crashed one: take its VIP address off, rewind it onto the
    // primary, and restart it as a standby. Its diverged writes are discarded by the rewind.
    await runOnHost(old, ['ip', 'addr', 'del', `${t.vip.address}/${t.vip.prefixLength}`, 'dev', 'eth0'], { cgroup: false });
    await stopServer(lab.pg[old], 'fast');
    if (postmasterPid(lab.pg[old]) !== null) await stopServer(lab.pg[old], 'immediate');
    await lab.emulator.sql(t.hosts[primary].address, 'CHECKPOINT', [], 30_000);
    const source = `host=${t.hosts[primary].address} port=${t.ports.postgres} user=postgres dbname=postgres`;
    const rewound = await runOnHost(old, [path.join(pgBinDir, 'pg_rewind'), '--target-pgdata', lab.pg[old].dataDir, '--source-server', source], { user: 'postgres', cgroup: false, timeoutMs: 120_000 });
    if (rewound.code !== 0) throw new Error(`pg_rewind of ${old} failed: ${rewound.stderr.trim()}`);
    const autoConf = path.join(lab.pg[old].dataDir, 'postgresql.auto.conf');
    const kept = readFileSync(autoConf, 'utf8')
      .split('\n')
      .filter((l) => !/^\s*(primary_conninfo|synchronous_standby_names)\s*=/.test(l));
    writeFileSync(autoConf, [...kept, `primary_conninfo = '${source} application_name=${old}'`, ''].join('\n'));
    writeFileSync(path.join(lab.pg[old].dataDir, 'standby.signal'), '');
    await mustRunOnHost(old, ['chown', 'postgres:postgres', autoConf, path.join(lab.pg[old].dataDir, 'standby.signal')], { cgroup: false });
    await startServer(lab.pg[old], lab.reaper);
  }
  await lab.emulator.sql(t.hosts[primary].address, `ALTER SYSTEM SET synchronous_standby_names = '"${old}"'`, [], 10_000);
  await lab.emulator.sql(t.hosts[primary].address, 'SELECT pg_reload_conf()', [], 10_000);
  await waitForStreaming(primary, old, 60_000);
  await startBaselineLoop(lab, { primary, standby: old });
  return lab.waitHealthy(60_000);
}
