// Goal: the config file is validated with clear errors, and the standalone emulator (EC2 + IMDS)
// starts, serves and stops cleanly on a signal.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { AssignPrivateIpAddressesCommand, DescribeNetworkInterfacesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { EmulatorConfigError, loadEmulatorConfigFile, resolveEmulatorConfig, startEc2EmulatorFromFile } from './index.js';
import { baseConfig, dbA, dbB, ec2Client, emulatorForTest, eventually, expectEc2Error, region, suiteTimeout, vip } from './fixtures.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const exampleConfig = path.join(import.meta.dirname, 'examples/two-nodes.yaml');
const exampleKey = 'AKIAEXAMPLEAGENT01';
const exampleSecret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

let dir: string;
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'ec2-emulator-standalone-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface RunningCli {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts cli.ts the way `npm run ec2-emulator` does (tsx, source condition); stopped when the test ends. */
function startCli(t: TestContext, args: string[]): RunningCli {
  const child = spawn(process.execPath, ['--conditions=pgvip-source', '--import', 'tsx', 'test/ec2-emulator/cli.ts', ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, output: () => output, exited };
}

function listeningUrl(output: string, what: RegExp): string | undefined {
  return new RegExp(`${what.source} (?:listening on )?(http://127\\.0\\.0\\.1:\\d+)`).exec(output)?.[1];
}

describe('config validation', suiteTimeout, () => {
  it('lists every broken reference with its path', () => {
    const broken = baseConfig({
      networkInterfaces: [
        { id: 'eni-0aaa', instanceId: 'i-0aaa', subnetId: 'subnet-0a1', privateIpAddress: '198.18.2.10' },
        { id: 'eni-0bbb', instanceId: 'i-0bbb', subnetId: 'subnet-0ff', privateIpAddress: '198.18.1.11' },
        { id: 'eni-0ccc', instanceId: 'i-0ccc', subnetId: 'subnet-0a1', privateIpAddress: '198.18.1.12', secondaryPrivateIpAddresses: ['198.18.1.12'] },
      ],
      routeTables: [{ id: 'rtb-0a1', vpcId: 'vpc-0a1', routes: [{ destinationCidrBlock: '198.19.0.10/32', networkInterfaceId: 'eni-0fff' }] }],
    });
    assert.throws(
      () => resolveEmulatorConfig(broken),
      (err: Error) => {
        assert.ok(err instanceof EmulatorConfigError);
        assert.match(err.message, /198\.18\.2\.10 is outside subnet subnet-0a1 \(198\.18\.1\.0\/24\)\n\s+→ at networkInterfaces\[0\]\.privateIpAddress/);
        assert.match(err.message, /unknown subnet subnet-0ff\n\s+→ at networkInterfaces\[1\]\.subnetId/);
        assert.match(err.message, /198\.18\.1\.12 is already held by eni-0ccc\n\s+→ at networkInterfaces\[2\]\.secondaryPrivateIpAddresses\[0\]/);
        assert.match(err.message, /unknown network interface eni-0fff\n\s+→ at routeTables\[0\]\.routes\[0\]\.networkInterfaceId/);
        return true;
      },
    );
  });

  it('rejects malformed ids, unknown keys and bad fault rules', () => {
    const message = (config: unknown) => {
      try {
        resolveEmulatorConfig(config);
      } catch (err) {
        return (err as Error).message;
      }
      return 'accepted';
    };
    assert.match(message({ ...baseConfig(), networkInterfaces: [{ id: 'db-a', subnetId: 'subnet-0a1', privateIpAddress: '198.18.1.10' }] }), /expected an id like eni-0123abcd/);
    assert.match(message({ ...baseConfig(), remapDelay: 5 }), /Unrecognized key: "remapDelay"/);
    assert.match(message({ ...baseConfig(), faults: { rules: [{ action: '*', kind: 'slow' }] } }), /faults\.rules\[0\]\.kind/);
    // A field error must not crash the cross-reference checks that would read the broken field.
    const badCidr = baseConfig();
    assert.match(message({ ...badCidr, subnets: [{ ...badCidr.subnets[0]!, cidrBlock: 'abc' }] }), /expected a CIDR block[^\n]*\n\s+→ at subnets\[0\]\.cidrBlock/);
  });

  it('loads the example YAML file with its policy file', async (t) => {
    const config = loadEmulatorConfigFile(exampleConfig);
    assert.equal(config.networkInterfaces.length, 2);
    assert.equal(config.iam?.accessKeys.get(exampleKey)?.principal.arn, 'arn:aws:iam::123456789012:user/db-agent');
    assert.equal(config.iam?.accessKeys.get(exampleKey)?.principal.policies[0]?.Statement.length, 2);
    const ec2 = await startEc2EmulatorFromFile(exampleConfig, { port: 0 });
    t.after(() => ec2.close());
    const keyed = ec2Client(ec2.url, { accessKeyId: exampleKey, secretAccessKey: exampleSecret });
    const out = await keyed.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [dbA.eni] }));
    assert.deepEqual(
      out.NetworkInterfaces?.[0]?.PrivateIpAddresses?.map((a) => a.PrivateIpAddress),
      [dbA.primaryIp, vip],
    );
    // Without attachTime in the file, the ENIs were attached when the emulator started.
    const attachedAgoMs = Date.now() - (out.NetworkInterfaces?.[0]?.Attachment?.AttachTime?.getTime() ?? NaN);
    assert.ok(attachedAgoMs >= 0 && attachedAgoMs < 60_000, `attached ${attachedAgoMs} ms ago`);
  });

  it('says which file is not valid YAML or JSON', () => {
    const yamlFile = path.join(dir, 'broken.yaml');
    writeFileSync(yamlFile, 'vpcs: [unclosed\n');
    assert.throws(() => loadEmulatorConfigFile(yamlFile), new RegExp(`${yamlFile} is not valid YAML`));
    const jsonFile = path.join(dir, 'broken.json');
    writeFileSync(jsonFile, '{"vpcs": ');
    assert.throws(() => loadEmulatorConfigFile(jsonFile), new RegExp(`${jsonFile} is not valid JSON`));
  });
});

describe('npm run ec2-emulator', { timeout: 60_000 }, () => {
  it('serves EC2 and IMDS from a config file and shuts down cleanly on SIGTERM', async (t) => {
    const cli = startCli(t, ['--config', exampleConfig, '--port', '0', '--imds-port', '0', '--instance', dbA.instanceId]);
    const [ec2Url, imdsUrl] = await eventually(() => {
      const ec2 = listeningUrl(cli.output(), /EC2 API/);
      const imds = listeningUrl(cli.output(), /IMDS for i-0aaa/);
      return ec2 && imds ? [ec2, imds] : undefined;
    }, 20_000, `the listening lines (output so far: ${cli.output()})`);

    const agent = ec2Client(ec2Url!, { accessKeyId: exampleKey, secretAccessKey: exampleSecret });
    await agent.send(new AssignPrivateIpAddressesCommand({
      NetworkInterfaceId: dbB.eni,
      PrivateIpAddresses: [vip],
      AllowReassignment: true,
    }));
    const out = await agent.send(new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'addresses.private-ip-address', Values: [vip] }] }));
    assert.deepEqual(out.NetworkInterfaces?.map((e) => e.NetworkInterfaceId), [dbB.eni]);
    await expectEc2Error(ec2Client(ec2Url!, { accessKeyId: 'AKIANOTINTHEFILE1' }).send(new DescribeNetworkInterfacesCommand({})), 'AuthFailure', 401);

    const session = await (await fetch(`${imdsUrl}/latest/api/token`, { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' } })).text();
    const instanceId = await (await fetch(`${imdsUrl}/latest/meta-data/instance-id`, { headers: { 'X-aws-ec2-metadata-token': session } })).text();
    assert.equal(instanceId, dbA.instanceId);

    cli.child.kill('SIGTERM');
    assert.deepEqual(await cli.exited, { code: 0, signal: null });
    assert.match(cli.output(), /SIGTERM, shutting down/);
  });

  it('exits 2 with the validation errors for a broken config', async (t) => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'vpcs: []\nsubnets: []\n');
    const cli = startCli(t, ['--config', file]);
    assert.deepEqual(await cli.exited, { code: 2, signal: null });
    assert.match(cli.output(), new RegExp(`${file} is invalid`));
    assert.match(cli.output(), /→ at vpcs/);
  });

  it('runs IMDS alone against an emulator elsewhere, with its instance role, and stops on SIGINT', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({ iam: { roles: { 'pgvip-db': { instances: [dbB.instanceId], policy: { Statement: { Effect: 'Allow', Action: 'ec2:Describe*', Resource: '*' } } } } } }));
    const cli = startCli(t, ['--emulator-url', ec2.url, '--imds-port', '0', '--instance', dbB.instanceId]);
    const imdsUrl = await eventually(() => listeningUrl(cli.output(), /IMDS for i-0bbb/), 20_000, 'the IMDS listening line');
    const session = await (await fetch(`${imdsUrl}/latest/api/token`, { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' } })).text();
    const localIpv4 = await (await fetch(`${imdsUrl}/latest/meta-data/local-ipv4`, { headers: { 'X-aws-ec2-metadata-token': session } })).text();
    assert.equal(localIpv4, dbB.primaryIp);
    // The role credentials come from the emulator (its admin API), so the EC2 API there accepts them.
    const role = await (await fetch(`${imdsUrl}/latest/meta-data/iam/security-credentials/`, { headers: { 'X-aws-ec2-metadata-token': session } })).text();
    assert.equal(role, 'pgvip-db');
    const creds = (await (await fetch(`${imdsUrl}/latest/meta-data/iam/security-credentials/pgvip-db`, { headers: { 'X-aws-ec2-metadata-token': session } })).json()) as Record<string, string>;
    const client = new EC2Client({
      region,
      endpoint: ec2.url,
      maxAttempts: 1,
      credentials: {
        accessKeyId: creds.AccessKeyId!,
        secretAccessKey: creds.SecretAccessKey!,
        sessionToken: creds.Token!,
      },
    });
    await client.send(new DescribeNetworkInterfacesCommand({}));
    assert.equal(ec2.requests().at(-1)?.principal, `arn:aws:sts::123456789012:assumed-role/pgvip-db/${dbB.instanceId}`);
    cli.child.kill('SIGINT');
    assert.deepEqual(await cli.exited, { code: 0, signal: null });
  });
});
