// Goal: `pgvip doctor`, run on a database node, proves against the EC2 API and IMDSv2 (here the
// project's emulator, enforcing IAM policies per access key) what can be proven without acting —
// and names the exact IAM action that is missing, the route that is absent, the address that
// does not fit — while saying plainly that Assign/UnassignPrivateIpAddresses cannot be proven.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startEc2Emulator, startImds, type Ec2Emulator, type ImdsServer } from '../../../test/ec2-emulator/index.js';
import { baseConfig, dbA, overlayVip, testSecretAccessKey, vip } from '../../../test/ec2-emulator/fixtures.js';
import { repoRoot, runPgvip, type CliResult } from './cli-helpers.js';
import { tempDir } from './notify-helpers.js';

/** The policies shipped in deploy/iam/, with their placeholders filled in for the emulator's account. */
function shippedPolicy(
  name: string,
  routeTables: string[] = [],
): { Statement: Array<{ Action: string[]; Resource: string | string[] }> } {
  const text = readFileSync(path.join(repoRoot, 'deploy/iam', name), 'utf8')
    .replaceAll('<region>', 'us-east-1')
    .replaceAll('<account>', '123456789012')
    .replaceAll('<cluster>', 'main');
  const policy = JSON.parse(text) as { Statement: Array<{ Action: string[]; Resource: string | string[] }> };
  for (const s of policy.Statement) {
    if (Array.isArray(s.Resource) && s.Resource.some((r) => r.includes('<route-table-id>'))) {
      s.Resource = routeTables.map((id) => `arn:aws:ec2:us-east-1:123456789012:route-table/${id}`);
    }
  }
  return policy;
}

function without(policy: ReturnType<typeof shippedPolicy>, action: string): ReturnType<typeof shippedPolicy> {
  const statements = policy.Statement.map((s) => ({ ...s, Action: s.Action.filter((a) => a !== action) }));
  return { ...policy, Statement: statements.filter((s) => s.Action.length > 0) };
}

const keys = {
  secondary: 'AKIADOCTORSECONDARY',
  noDescribe: 'AKIADOCTORNODESCRIB',
  routes: 'AKIADOCTORROUTES001',
  noCreateRoute: 'AKIADOCTORNOCREATE1',
} as const;

function agentYaml(vipBlock: string, nodeVip = ''): string {
  return `self: db-a
cluster:
  name: main
  nodes:
    - id: db-a
      agent: { host: ${dbA.primaryIp} }
      postgres: { host: ${dbA.primaryIp}, dataDir: /var/lib/postgresql/15/main }
${nodeVip}    - id: db-b
      agent: { host: 198.18.1.11 }
      postgres: { host: 198.18.1.11, dataDir: /var/lib/postgresql/15/main }
  witness: { host: 198.18.2.20 }
  vip: ${vipBlock}
  auth: { disabled: true }
`;
}

interface Lab {
  readonly ec2: Ec2Emulator;
  readonly imds: ImdsServer;
  readonly dir: string;
}

// Two at a time: each run loads the AWS SDK through tsx, which alone costs seconds of CPU.
describe('pgvip doctor', { concurrency: 2, timeout: 300_000 }, () => {
  let lab: Lab;
  let labWithRoutes: Lab;

  async function startLab(dir: string, sourceDestCheck: boolean): Promise<Lab> {
    const policies = {
      secondary: shippedPolicy('agent-secondary-ip.json'),
      noDescribe: without(shippedPolicy('agent-secondary-ip.json'), 'ec2:DescribeNetworkInterfaces'),
      routes: shippedPolicy('agent-route-table.json', ['rtb-0a1', 'rtb-0b2']),
      noCreateRoute: without(shippedPolicy('agent-route-table.json', ['rtb-0a1', 'rtb-0b2']), 'ec2:CreateRoute'),
    };
    for (const [name, policy] of Object.entries(policies)) writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(policy));
    const config = baseConfig();
    const ec2 = await startEc2Emulator(
      {
        ...config,
        networkInterfaces: config.networkInterfaces!.map((eni) =>
          eni.id === dbA.eni ? { ...eni, sourceDestCheck } : eni,
        ),
        iam: { accessKeys: Object.fromEntries(Object.entries(keys).map(([name, key]) => [key, { secretAccessKey: testSecretAccessKey, user: `doctor-${name}`, policyFile: `${name}.json` }])) },
      },
      { baseDir: dir },
    );
    const imds = await startImds({ instanceId: dbA.instanceId, source: ec2 });
    return { ec2, imds, dir };
  }

  let labDir: string;
  before(async () => {
    labDir = mkdtempSync(path.join(tmpdir(), 'pgvip-doctor-'));
    lab = await startLab(labDir, true);
    labWithRoutes = await startLab(labDir, false);
  });
  after(async () => {
    await lab?.imds.close();
    await lab?.ec2.close();
    await labWithRoutes?.imds.close();
    await labWithRoutes?.ec2.close();
    rmSync(labDir, { recursive: true, force: true });
  });

  function doctor(l: Lab, key: string, yaml: string, extra: string[] = [], imdsUrl = l.imds.url): Promise<CliResult> {
    const file = path.join(l.dir, `agent-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, yaml);
    return runPgvip(['doctor', '--config', file, '--imds', imdsUrl, '--ec2-endpoint', l.ec2.url, ...extra], {
      env: { AWS_ACCESS_KEY_ID: key, AWS_SECRET_ACCESS_KEY: testSecretAccessKey },
      timeoutMs: 90_000,
    });
  }

  const secondaryIp = `{ mode: secondary-ip, address: ${vip} }`;
  const routeTable = `{ mode: route-table, address: ${overlayVip}, routeTableIds: [rtb-0a1, rtb-0b2] }`;

  it('passes with the shipped secondary-IP policy, and says Assign/Unassign cannot be proven without acting', async () => {
    const r = await doctor(lab, keys.secondary, agentYaml(secondaryIp));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], `pgvip doctor: cluster main, node db-a, VIP ${vip} (secondary-ip)`);
    // No PostgreSQL answers at this node's address here: the checks that ask it say so, as notes.
    assert.match(r.stdout, /\nℹ PostgreSQL commit guard: could not ask PostgreSQL at 198\.18\.1\.10:5432: /);
    assert.match(r.stdout, /\nℹ PostgreSQL WAL archiving: could not ask PostgreSQL at 198\.18\.1\.10:5432: /);
    const askedPostgres = /^ℹ PostgreSQL (commit guard|WAL archiving): could not ask/;
    assert.deepEqual(lines.slice(1).filter((l) => /^[✔✘ℹ] /.test(l) && !askedPostgres.test(l)), [
      `✔ IMDSv2: session token issued by ${lab.imds.url}`,
      `✔ IMDS identity: instance ${dbA.instanceId}, ENI ${dbA.eni}, region us-east-1, subnet 198.18.1.0/24`,
      '✔ IAM ec2:DescribeNetworkInterfaces: allowed on * (proven with DryRun)',
      `✔ ENI: ${dbA.eni}: attached to ${dbA.instanceId}, subnet subnet-0a1, primary address ${dbA.primaryIp}`,
      '✔ ENI tag: pgvip:cluster=main: matches the condition of deploy/iam/agent-secondary-ip.json',
      `✔ VIP in subnet: ${vip} is inside 198.18.1.0/24`,
      `✔ VIP placement: ${vip} is on ${dbA.eni} (this node)`,
      'ℹ IAM ec2:AssignPrivateIpAddresses, ec2:UnassignPrivateIpAddresses: cannot be proven without acting: these EC2 calls have no DryRun, and trying them would move the VIP. They are first used when this node is promoted',
    ]);
    assert.match(r.stdout, /\n {4}hint: make sure the instance role's policy allows both on this cluster's ENIs, as deploy\/iam\/agent-secondary-ip\.json does\n/);
    assert.match(r.stdout, /\nno problem found\n$/);
    // Proving is not acting: only DryRun and Describe calls reached EC2, and the VIP did not move.
    assert.deepEqual([...new Set(lab.ec2.requests().filter((q) => q.accessKeyId === keys.secondary).map((q) => q.action))], ['DescribeNetworkInterfaces']);
    const dbAEni = lab.ec2.truth().networkInterfaces.find((e) => e.id === dbA.eni);
    assert.deepEqual(dbAEni?.secondaryPrivateIpAddresses, [vip]);
  });

  it('names the missing ec2:DescribeNetworkInterfaces and exits 1', async () => {
    const r = await doctor(lab, keys.noDescribe, agentYaml(secondaryIp));
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /\n✘ IAM ec2:DescribeNetworkInterfaces: MISSING: the instance role may not call ec2:DescribeNetworkInterfaces on \*\n {4}fix: add ec2:DescribeNetworkInterfaces to the instance role's policy \(see deploy\/iam\/agent-secondary-ip\.json\)\n/);
    assert.match(r.stdout, /\n1 problem found\n$/);
  });

  it('passes in route-table mode with the shipped policy, noting a route the agent will create', async () => {
    const r = await doctor(labWithRoutes, keys.routes, agentYaml(routeTable));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const line of [
      `✔ ENI source/dest check: off on ${dbA.eni}, as route-table mode needs`,
      '✔ IAM ec2:DescribeRouteTables: allowed on * (proven with DryRun)',
      '✔ IAM ec2:ReplaceRoute: allowed on rtb-0a1, rtb-0b2 (proven with DryRun)',
      '✔ IAM ec2:CreateRoute: allowed on rtb-0a1, rtb-0b2 (proven with DryRun)',
      `✔ route table rtb-0a1: ${overlayVip}/32 → ${dbA.eni} (this node)`,
      `ℹ route table rtb-0b2: has no route for ${overlayVip}/32 yet; the agent creates it when this node is promoted (CreateRoute is allowed)`,
    ]) {
      assert.ok(r.stdout.split('\n').includes(line), `missing line: ${line}\n${r.stdout}`);
    }
    assert.doesNotMatch(r.stdout, /AssignPrivateIpAddresses/);
    // DryRun proved ReplaceRoute/CreateRoute without changing a route.
    assert.deepEqual(labWithRoutes.ec2.requests().filter((q) => q.accessKeyId === keys.routes && (q.action === 'ReplaceRoute' || q.action === 'CreateRoute')).map((q) => q.code), ['DryRunOperation', 'DryRunOperation', 'DryRunOperation', 'DryRunOperation']);
  });

  it('names ec2:CreateRoute when the policy lacks it, and the route it therefore cannot create', async () => {
    const r = await doctor(labWithRoutes, keys.noCreateRoute, agentYaml(routeTable));
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /\n✘ IAM ec2:CreateRoute: MISSING on rtb-0a1, rtb-0b2: the instance role may not call ec2:CreateRoute there\n {4}fix: allow ec2:CreateRoute on arn:aws:ec2:us-east-1:<account>:route-table\/rtb-0a1, arn:aws:ec2:us-east-1:<account>:route-table\/rtb-0b2 \(see deploy\/iam\/agent-route-table\.json\)\n/);
    assert.match(r.stdout, new RegExp(`\\n✘ route table rtb-0b2: has no route for ${overlayVip.replaceAll('.', '\\.')}/32, and the agent may not create one\\n {4}fix: aws ec2 create-route --route-table-id rtb-0b2 --destination-cidr-block ${overlayVip.replaceAll('.', '\\.')}/32 --network-interface-id ${dbA.eni}\\n`));
    assert.match(r.stdout, /✔ IAM ec2:ReplaceRoute: allowed on rtb-0a1, rtb-0b2/);
    assert.match(r.stdout, /\n2 problems found\n$/);
  });

  it('fails route-table mode on an ENI that still checks source/destination, with the command that fixes it', async () => {
    const r = await doctor(lab, keys.routes, agentYaml(routeTable));
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`\\n✘ ENI source/dest check: ${dbA.eni} has source/destination checking on, so it drops traffic addressed to the VIP\\n {4}fix: aws ec2 modify-network-interface-attribute --network-interface-id ${dbA.eni} --no-source-dest-check\\n`));
  });

  it('fails a VIP outside the subnet, or on an address AWS reserves', async () => {
    const outside = await doctor(lab, keys.secondary, agentYaml('{ mode: secondary-ip, address: 198.18.2.50 }'));
    assert.equal(outside.code, 1, outside.stdout + outside.stderr);
    assert.match(outside.stdout, /\n✘ VIP in subnet: 198\.18\.2\.50 is outside this node's subnet 198\.18\.1\.0\/24: EC2 cannot assign it to the ENI\n {4}fix: choose a free address inside 198\.18\.1\.0\/24, or use vip\.mode: route-table/);
    const reserved = await doctor(lab, keys.secondary, agentYaml('{ mode: secondary-ip, address: 198.18.1.1, prefixLength: 24 }'));
    assert.equal(reserved.code, 1);
    assert.match(reserved.stdout, /✘ VIP in subnet: 198\.18\.1\.1 is reserved by AWS for the VPC router of 198\.18\.1\.0\/24/);
    const prefix = await doctor(lab, keys.secondary, agentYaml(`{ mode: secondary-ip, address: ${vip}, prefixLength: 20 }`));
    assert.equal(prefix.code, 1);
    assert.match(prefix.stdout, /✘ VIP prefix length: vip\.prefixLength is 20 but the subnet is \/24\n {4}fix: set vip\.prefixLength: 24/);
  });

  it('fails when IMDS does not answer and discovery needs it, with the fix', async () => {
    const dead = await startImds({ instanceId: dbA.instanceId, source: lab.ec2 });
    const deadUrl = dead.url;
    await dead.close();
    const r = await doctor(lab, keys.secondary, agentYaml(secondaryIp), [], deadUrl);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`\\n✘ IMDSv2: no answer from ${deadUrl}: connect ECONNREFUSED .*\\n {4}fix: the agent discovers instance, ENI, region and subnet through IMDSv2 \\(vip\\.discovery: imds\\)\\. Enable it: aws ec2 modify-instance-metadata-options`));
    assert.match(r.stdout, /\n✘ region: unknown: vip\.region is not set and IMDS did not answer\n {4}fix: set cluster\.vip\.region/);
  });

  it('with discovery: config, only notes a missing IMDS and checks the configured ENI', async () => {
    const dead = await startImds({ instanceId: dbA.instanceId, source: lab.ec2 });
    const deadUrl = dead.url;
    await dead.close();
    const yaml = agentYaml(`{ mode: secondary-ip, address: ${vip}, prefixLength: 24, region: us-east-1, discovery: config }`, '').replace(
      `      postgres: { host: ${dbA.primaryIp}, dataDir: /var/lib/postgresql/15/main }\n`,
      `      postgres: { host: ${dbA.primaryIp}, dataDir: /var/lib/postgresql/15/main }\n      vip: { eniId: ${dbA.eni} }\n`,
    ).replace('      postgres: { host: 198.18.1.11, dataDir: /var/lib/postgresql/15/main }\n', '      postgres: { host: 198.18.1.11, dataDir: /var/lib/postgresql/15/main }\n      vip: { eniId: eni-0bbb }\n');
    const r = await doctor(lab, keys.secondary, yaml, [], deadUrl);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /\nℹ IMDSv2: no answer from .*; vip\.discovery is "config", so the agent does not need it/);
    assert.match(r.stdout, new RegExp(`✔ ENI: ${dbA.eni}: attached to ${dbA.instanceId}`));
    assert.match(r.stdout, new RegExp(`✔ VIP in subnet: ${vip.replaceAll('.', '\\.')} is inside 198\\.18\\.1\\.0/24`));
  });

  it('fails on credentials EC2 does not accept, and prints {ok, checks} with --json', async () => {
    const denied = await doctor(lab, 'AKIAUNKNOWNKEY00001', agentYaml(secondaryIp), ['--json']);
    assert.equal(denied.code, 1, denied.stderr);
    const doc = JSON.parse(denied.stdout) as {
      ok: boolean;
      cluster: string;
      node: string;
      checks: Array<{ status: string; title: string; detail: string; fix?: string }>;
    };
    assert.equal(doc.ok, false);
    assert.equal(doc.cluster, 'main');
    assert.equal(doc.node, 'db-a');
    const credentials = doc.checks.find((c) => c.title === 'AWS credentials');
    assert.equal(credentials?.status, 'fail');
    assert.match(credentials!.detail, /^AuthFailure: AWS was not able to validate the provided access credentials/);
    assert.match(credentials!.fix!, /attach an IAM role \(instance profile\)/);
  });

  it('exits 2 for a missing or invalid config file, and when --config is not given', async (t) => {
    const missing = await runPgvip(['doctor', '--config', '/nonexistent/agent.yaml']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^pgvip: PGVIP_CONFIG_UNREADABLE: cannot read the config file\n {2}\/nonexistent\/agent\.yaml: no such file \(ENOENT\)/);
    const file = path.join(tempDir(t, 'pgvip-doctor-'), 'agent.yaml');
    writeFileSync(file, agentYaml('{ mode: secondary-ip, address: 10.0.1.300 }'));
    const invalid = await runPgvip(['doctor', '--config', file]);
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /cluster\.vip\.address: must be an IPv4 address/);
    const none = await runPgvip(['doctor']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /required option '--config <file>' not specified/);
  });
});
