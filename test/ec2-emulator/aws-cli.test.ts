// Goal: the real AWS CLI v2 (Debian's /usr/bin/aws) works against the emulator: parsed JSON output,
// error text and exit code 254.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deliveryOf, holderOfAddress, startImds } from './index.js';
import { baseConfig, dbA, dbB, emulatorForTest, other, overlayVip, region, testSecretAccessKey, threeAz, threeAzConfig, vip } from './fixtures.js';

const awsCli = '/usr/bin/aws';

interface CliResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

let home: string;
before(() => {
  home = mkdtempSync(path.join(tmpdir(), 'ec2-emulator-cli-'));
});
after(() => rmSync(home, { recursive: true, force: true }));

/** Who the CLI is: an access key and its secret, or an instance whose role it finds through IMDS. */
type CliCredentials = { readonly accessKeyId: string; readonly secretAccessKey: string } | { readonly imdsUrl: string };

/**
 * Runs `aws --endpoint-url URL ec2 ARGS --output json` asynchronously (the emulator runs in this
 * process, so a synchronous spawn would deadlock), with an environment that holds nothing but
 * what the test sets: no profile, config file or real credentials can leak in.
 */
function aws(endpoint: string, args: string[], credentials: CliCredentials = { accessKeyId: 'AKIDCLITEST00001', secretAccessKey: testSecretAccessKey }): Promise<CliResult> {
  const env = {
    PATH: '/usr/bin:/bin',
    HOME: home,
    ...('imdsUrl' in credentials
      ? // botocore appends `latest/…` to the endpoint: it must end in a slash, as its default does.
        { AWS_EC2_METADATA_SERVICE_ENDPOINT: `${credentials.imdsUrl}/` }
      : { AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' }),
    AWS_DEFAULT_REGION: region,
    AWS_CONFIG_FILE: path.join(home, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'no-credentials'),
    AWS_PAGER: '',
  };
  return new Promise((resolve) => {
    execFile(awsCli, ['--endpoint-url', endpoint, 'ec2', ...args, '--output', 'json'], { env, timeout: 20_000 }, (err, stdout, stderr) => {
      const exitCode = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ exitCode, stdout, stderr });
    });
  });
}

function assertCliError(result: CliResult, code: string, operation: string, message: string): void {
  assert.equal(result.exitCode, 254, `exit code (stderr: ${result.stderr})`);
  assert.equal(result.stderr.trim(), `An error occurred (${code}) when calling the ${operation} operation: ${message}`);
}

describe('the AWS CLI against the emulator', { timeout: 90_000 }, () => {
  it('moves the VIP with assign-private-ip-addresses --allow-reassignment and shows it in describe-network-interfaces', async (t) => {
    const ec2 = await emulatorForTest(t);
    const assigned = await aws(ec2.url, ['assign-private-ip-addresses', '--network-interface-id', dbB.eni, '--private-ip-addresses', vip, '--allow-reassignment']);
    assert.equal(assigned.exitCode, 0, assigned.stderr);
    assert.deepEqual(JSON.parse(assigned.stdout), {
      NetworkInterfaceId: dbB.eni,
      AssignedPrivateIpAddresses: [{ PrivateIpAddress: vip }],
      AssignedIpv4Prefixes: [],
    });
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbB.eni);

    const described = await aws(ec2.url, ['describe-network-interfaces', '--filters', `Name=addresses.private-ip-address,Values=${vip}`]);
    assert.equal(described.exitCode, 0, described.stderr);
    const enis = JSON.parse(described.stdout).NetworkInterfaces as Array<{
      NetworkInterfaceId: string;
      Attachment: { InstanceId: string };
      PrivateIpAddresses: Array<{ PrivateIpAddress: string; Primary: boolean }>;
    }>;
    assert.deepEqual(enis.map((e) => [e.NetworkInterfaceId, e.Attachment.InstanceId]), [[dbB.eni, dbB.instanceId]]);
    assert.deepEqual(enis[0]?.PrivateIpAddresses, [
      { PrivateIpAddress: dbB.primaryIp, Primary: true },
      { PrivateIpAddress: vip, Primary: false },
    ]);
  });

  it('prints the AWS error line and exits 254 when the address is held elsewhere and may not move, then unassigns', async (t) => {
    const ec2 = await emulatorForTest(t);
    const refused = await aws(ec2.url, ['assign-private-ip-addresses', '--network-interface-id', other.eni, '--private-ip-addresses', vip]);
    assertCliError(refused, 'InvalidParameterValue', 'AssignPrivateIpAddresses', `[${vip}] assigned, but move is not allowed.`);
    const unassigned = await aws(ec2.url, ['unassign-private-ip-addresses', '--network-interface-id', dbA.eni, '--private-ip-addresses', vip]);
    assert.equal(unassigned.exitCode, 0, unassigned.stderr);
    assert.equal(holderOfAddress(ec2.state.control, vip), undefined);
  });

  it('replaces, creates and describes routes, with the exact errors for a missing and a duplicate route', async (t) => {
    const ec2 = await emulatorForTest(t);
    const route = ['--destination-cidr-block', `${overlayVip}/32`, '--network-interface-id', dbB.eni];
    const missing = await aws(ec2.url, ['replace-route', '--route-table-id', 'rtb-0b2', ...route]);
    assertCliError(missing, 'InvalidParameterValue', 'ReplaceRoute', `There is no route defined for '${overlayVip}/32' in the route table. Use CreateRoute instead.`);
    const created = await aws(ec2.url, ['create-route', '--route-table-id', 'rtb-0b2', ...route]);
    assert.equal(created.exitCode, 0, created.stderr);
    assert.deepEqual(JSON.parse(created.stdout), { Return: true });
    const duplicate = await aws(ec2.url, ['create-route', '--route-table-id', 'rtb-0b2', ...route]);
    assertCliError(duplicate, 'RouteAlreadyExists', 'CreateRoute', `The route identified by ${overlayVip}/32 already exists.`);
    const replaced = await aws(ec2.url, ['replace-route', '--route-table-id', 'rtb-0a1', ...route]);
    assert.equal(replaced.exitCode, 0, replaced.stderr);
    const tables = await aws(ec2.url, ['describe-route-tables', '--filters', `Name=route.destination-cidr-block,Values=${overlayVip}/32`]);
    const found = JSON.parse(tables.stdout).RouteTables as Array<{
      RouteTableId: string;
      Routes: Array<{ DestinationCidrBlock: string; NetworkInterfaceId?: string }>;
    }>;
    assert.deepEqual(
      found.map((t) => [t.RouteTableId, t.Routes.find((r) => r.DestinationCidrBlock === `${overlayVip}/32`)?.NetworkInterfaceId]),
      [['rtb-0a1', dbB.eni], ['rtb-0b2', dbB.eni]],
    );
  });

  it('repoints the VIP route in three AZs\' tables, and describe-route-tables and the data plane show the new primary', async (t) => {
    const ec2 = await emulatorForTest(t, threeAzConfig());
    const [, b] = threeAz;
    for (const n of threeAz) {
      const replaced = await aws(ec2.url, ['replace-route', '--route-table-id', n.routeTableId, '--destination-cidr-block', `${overlayVip}/32`, '--network-interface-id', b.eni]);
      assert.equal(replaced.exitCode, 0, replaced.stderr);
    }
    const ids = threeAz.map((n) => n.routeTableId);
    const tables = await aws(ec2.url, ['describe-route-tables', '--route-table-ids', ...ids, '--filters', `Name=route.destination-cidr-block,Values=${overlayVip}/32`]);
    assert.equal(tables.exitCode, 0, tables.stderr);
    const found = JSON.parse(tables.stdout).RouteTables as Array<{
      RouteTableId: string;
      Routes: Array<{ DestinationCidrBlock: string; NetworkInterfaceId?: string; InstanceId?: string; State: string }>;
    }>;
    const vipRoute = (tbl: (typeof found)[number]) => tbl.Routes.find((r) => r.DestinationCidrBlock === `${overlayVip}/32`);
    assert.deepEqual(
      found.map((tbl) => {
        const r = vipRoute(tbl);
        return [tbl.RouteTableId, r?.NetworkInterfaceId, r?.InstanceId, r?.State];
      }),
      ids.map((id) => [id, b.eni, b.instanceId, 'active']),
    );
    for (const n of threeAz) {
      const d = deliveryOf(ec2.truth(), overlayVip, n.subnetId);
      assert.ok('to' in d && d.to.id === b.eni, `from ${n.az}: ${JSON.stringify(d)}`);
    }
    const checks = await aws(ec2.url, ['describe-network-interfaces', '--filters', 'Name=tag:pgvip:cluster,Values=main', '--query', 'NetworkInterfaces[].[NetworkInterfaceId,SourceDestCheck]']);
    assert.deepEqual(JSON.parse(checks.stdout), threeAz.map((n) => [n.eni, false]), 'source/destination check off on every DB ENI');
  });

  it('reports DryRunOperation for a permitted --dry-run', async (t) => {
    const ec2 = await emulatorForTest(t);
    const dryRun = await aws(ec2.url, ['describe-network-interfaces', '--dry-run']);
    assertCliError(dryRun, 'DryRunOperation', 'DescribeNetworkInterfaces', 'Request would have succeeded, but DryRun flag is set.');
  });

  it('retries a throttled call like the SDK does', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({ faults: { rules: [{ action: 'AssignPrivateIpAddresses', kind: 'throttle', count: 1 }] } }));
    const result = await aws(ec2.url, ['assign-private-ip-addresses', '--network-interface-id', dbB.eni, '--private-ip-addresses', vip, '--allow-reassignment']);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.deepEqual(ec2.requests().map((r) => r.code ?? r.outcome), ['RequestLimitExceeded', 'ok']);
  });

  it('is refused by IAM with UnauthorizedOperation for a key whose policy lacks the action', async (t) => {
    const ec2 = await emulatorForTest(
      t,
      baseConfig({
        iam: {
          accessKeys: {
            AKIAREADONLYCLI01: { secretAccessKey: testSecretAccessKey, user: 'reader', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'ec2:Describe*', Resource: '*' }] } },
          },
        },
      }),
    );
    const reader = { accessKeyId: 'AKIAREADONLYCLI01', secretAccessKey: testSecretAccessKey };
    const denied = await aws(ec2.url, ['assign-private-ip-addresses', '--network-interface-id', dbB.eni, '--private-ip-addresses', vip, '--allow-reassignment'], reader);
    assert.equal(denied.exitCode, 254);
    assert.match(
      denied.stderr.trim(),
      /^An error occurred \(UnauthorizedOperation\) when calling the AssignPrivateIpAddresses operation: You are not authorized to perform this operation\. User: arn:aws:iam::123456789012:user\/reader is not authorized to perform: ec2:AssignPrivateIpAddresses on resource: arn:aws:ec2:us-east-1:123456789012:network-interface\/eni-0bbb .*Encoded authorization failure message: \S+$/,
    );
    const unknownKey = await aws(ec2.url, ['describe-network-interfaces'], { ...reader, accessKeyId: 'AKIANOTCONFIGURED' });
    assertCliError(unknownKey, 'AuthFailure', 'DescribeNetworkInterfaces', 'AWS was not able to validate the provided access credentials');
    // The CLI's signature is verified: the right key id with a wrong secret is refused as EC2 refuses it.
    assert.equal((await aws(ec2.url, ['describe-network-interfaces'], reader)).exitCode, 0);
    const wrongSecret = await aws(ec2.url, ['describe-network-interfaces'], { ...reader, secretAccessKey: `${testSecretAccessKey}x` });
    assertCliError(wrongSecret, 'AuthFailure', 'DescribeNetworkInterfaces', 'AWS was not able to validate the provided access credentials');
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbA.eni);
  });

  it('runs on an instance role found through IMDS, with no keys in its environment, under the role\'s policy', async (t) => {
    const ec2 = await emulatorForTest(
      t,
      baseConfig({ iam: { roles: { 'pgvip-db': { instances: [dbB.instanceId], policy: { Statement: { Effect: 'Allow', Action: 'ec2:DescribeNetworkInterfaces', Resource: '*' } } } } } }),
    );
    const imds = await startImds({ instanceId: dbB.instanceId, source: ec2 });
    t.after(() => imds.close());
    const described = await aws(ec2.url, ['describe-network-interfaces', '--network-interface-ids', dbB.eni], { imdsUrl: imds.url });
    assert.equal(described.exitCode, 0, described.stderr);
    assert.equal(ec2.requests().at(-1)?.principal, `arn:aws:sts::123456789012:assumed-role/pgvip-db/${dbB.instanceId}`);
    const refused = await aws(ec2.url, ['describe-route-tables'], { imdsUrl: imds.url });
    assert.equal(refused.exitCode, 254);
    assert.match(refused.stderr, /\(UnauthorizedOperation\) when calling the DescribeRouteTables operation: .*assumed-role\/pgvip-db\/i-0bbb/);
  });
});
