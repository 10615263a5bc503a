// Goal: the emulator's StopInstances speaks EC2's wire protocol — the real @aws-sdk/client-ec2 and the
// real AWS CLI parse its answers and errors (current and previous state, Force, DryRun, a missing or
// malformed id) — and IAM scopes it as deploy/iam/operator-stop-instance.json intends: a database
// instance tagged for the cluster may be stopped; another cluster's, or the witness, may not. The
// check before the stop (DescribeNetworkInterfaces by attachment.instance-id, which the policy also
// grants) answers the SDK and the CLI with the instance's addresses.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DescribeNetworkInterfacesCommand, StopInstancesCommand } from '@aws-sdk/client-ec2';
import { findInstance } from './model.js';
import { accountId, baseConfig, dbA, dbB, ec2Client, emulatorForTest, expectEc2Error, other, region, testSecretAccessKey, vip } from './fixtures.js';

const policyFile = path.resolve(import.meta.dirname, '../../deploy/iam/operator-stop-instance.json');

function policyFor(cluster: string): unknown {
  const text = readFileSync(policyFile, 'utf8').replaceAll('<region>', region).replaceAll('<account>', accountId).replaceAll('<cluster>', cluster);
  return JSON.parse(text);
}

/** Tagged as the CDK app tags them: db-a and db-b for cluster main, a database of another cluster, main's witness. */
const witness = 'i-0eee';
const instances = [
  { id: dbA.instanceId, tags: { 'pgvip:cluster': 'main', 'pgvip:role': 'database' } },
  { id: dbB.instanceId, tags: { 'pgvip:cluster': 'main', 'pgvip:role': 'database' } },
  { id: other.instanceId, tags: { 'pgvip:cluster': 'other', 'pgvip:role': 'database' } },
  { id: witness, tags: { 'pgvip:cluster': 'main', 'pgvip:role': 'witness' } },
];

function aws(endpoint: string, args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const env = {
    PATH: '/usr/bin:/bin',
    HOME: '/nonexistent',
    AWS_ACCESS_KEY_ID: 'AKIDCLITEST00001',
    AWS_SECRET_ACCESS_KEY: testSecretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_DEFAULT_REGION: region,
    AWS_CONFIG_FILE: '/nonexistent/config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
    AWS_PAGER: '',
  };
  return new Promise((resolve) => {
    execFile('/usr/bin/aws', ['--endpoint-url', endpoint, 'ec2', ...args, '--output', 'json'], { env, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ exitCode: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('StopInstances', { timeout: 60_000 }, () => {
  it('the SDK stops an instance with Force and reads both states; a second stop finds it stopped', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({ instances }));
    const client = ec2Client(ec2.url);
    const first = await client.send(new StopInstancesCommand({ InstanceIds: [dbA.instanceId], Force: true }));
    assert.deepEqual(first.StoppingInstances, [
      { InstanceId: dbA.instanceId, CurrentState: { Code: 64, Name: 'stopping' }, PreviousState: { Code: 16, Name: 'running' } },
    ]);
    assert.equal(findInstance(ec2.state.control, dbA.instanceId)?.state, 'stopped');
    assert.equal(findInstance(ec2.state.control, dbB.instanceId)?.state, 'running');
    const again = await client.send(new StopInstancesCommand({ InstanceIds: [dbA.instanceId], Force: true }));
    assert.deepEqual(again.StoppingInstances?.[0]?.CurrentState, { Code: 80, Name: 'stopped' });
    assert.deepEqual(again.StoppingInstances?.[0]?.PreviousState, { Code: 80, Name: 'stopped' });
  });

  it('the SDK gets DryRunOperation, InvalidInstanceID.NotFound and InvalidInstanceID.Malformed as EC2 words them', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({ instances }));
    const client = ec2Client(ec2.url);
    await expectEc2Error(client.send(new StopInstancesCommand({ InstanceIds: [dbA.instanceId], DryRun: true })), 'DryRunOperation', 412, 'Request would have succeeded, but DryRun flag is set.');
    assert.equal(findInstance(ec2.state.control, dbA.instanceId)?.state, 'running', 'a dry run changes nothing');
    await expectEc2Error(client.send(new StopInstancesCommand({ InstanceIds: ['i-0fff'] })), 'InvalidInstanceID.NotFound', 400, "The instance ID 'i-0fff' does not exist");
    await expectEc2Error(client.send(new StopInstancesCommand({ InstanceIds: ['db-a'] })), 'InvalidInstanceID.Malformed', 400, 'Invalid id: "db-a" (expecting "i-...")');
  });

  it('the AWS CLI: stop-instances --force prints both states; an unknown instance exits 254 with EC2\'s error line', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({ instances }));
    const stopped = await aws(ec2.url, ['stop-instances', '--instance-ids', dbB.instanceId, '--force']);
    assert.equal(stopped.exitCode, 0, stopped.stderr);
    assert.deepEqual(JSON.parse(stopped.stdout), {
      StoppingInstances: [{ InstanceId: dbB.instanceId, CurrentState: { Code: 64, Name: 'stopping' }, PreviousState: { Code: 16, Name: 'running' } }],
    });
    const missing = await aws(ec2.url, ['stop-instances', '--instance-ids', 'i-0fff', '--force']);
    assert.equal(missing.exitCode, 254);
    assert.equal(missing.stderr.trim(), "An error occurred (InvalidInstanceID.NotFound) when calling the StopInstances operation: The instance ID 'i-0fff' does not exist");
  });

  it('IAM with deploy/iam/operator-stop-instance.json: this cluster\'s database may be stopped, not another cluster\'s nor the witness', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({
      instances,
      iam: { accessKeys: { AKIDOPERATOR0001: { secretAccessKey: testSecretAccessKey, user: 'operator', policy: policyFor('main') as never } } },
    }));
    const client = ec2Client(ec2.url, { accessKeyId: 'AKIDOPERATOR0001' });
    const ok = await client.send(new StopInstancesCommand({ InstanceIds: [dbA.instanceId], Force: true }));
    assert.equal(ok.StoppingInstances?.[0]?.CurrentState?.Name, 'stopping');
    for (const id of [other.instanceId, witness]) {
      const denied = client.send(new StopInstancesCommand({ InstanceIds: [id], Force: true }));
      await assert.rejects(denied, (err: Error) => err.name === 'UnauthorizedOperation');
      assert.equal(findInstance(ec2.state.control, id)?.state, 'running');
    }
  });

  it('the check before a stop: with the operator policy, the SDK and the CLI list an instance\'s addresses', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({
      instances,
      iam: {
        accessKeys: {
          AKIDOPERATOR0001: { secretAccessKey: testSecretAccessKey, user: 'operator', policy: policyFor('main') as never },
          AKIDCLITEST00001: { secretAccessKey: testSecretAccessKey, user: 'operator-cli', policy: policyFor('main') as never },
        },
      },
    }));
    const byInstance = (id: string) => ({ Filters: [{ Name: 'attachment.instance-id', Values: [id] }] });
    const client = ec2Client(ec2.url, { accessKeyId: 'AKIDOPERATOR0001' });
    const held = await client.send(new DescribeNetworkInterfacesCommand(byInstance(dbA.instanceId)));
    const enisOfA = held.NetworkInterfaces ?? [];
    const addresses = enisOfA.flatMap((n) => (n.PrivateIpAddresses ?? []).map((a) => a.PrivateIpAddress));
    assert.deepEqual(addresses, [dbA.primaryIp, vip]);
    assert.deepEqual((await client.send(new DescribeNetworkInterfacesCommand(byInstance('i-0fff')))).NetworkInterfaces, []);
    const cli = await aws(ec2.url, ['describe-network-interfaces', '--filters', `Name=attachment.instance-id,Values=${dbB.instanceId}`]);
    assert.equal(cli.exitCode, 0, cli.stderr);
    type Eni = { Attachment: { InstanceId: string }; PrivateIpAddresses: { PrivateIpAddress: string }[] };
    const enis = (JSON.parse(cli.stdout) as { NetworkInterfaces: Eni[] }).NetworkInterfaces;
    const seen = enis.map((n) => [n.Attachment.InstanceId, n.PrivateIpAddresses.map((a) => a.PrivateIpAddress)]);
    assert.deepEqual(seen, [[dbB.instanceId, [dbB.primaryIp]]]);
  });
});
