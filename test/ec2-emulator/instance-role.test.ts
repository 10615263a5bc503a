// Goal: an instance with a role gets that role's temporary credentials from IMDS in EC2's shape; the
// SDK's default credential chain finds them there with no keys in its environment (as pgvip's agent
// does on EC2), and the EC2 API accepts them only with their session token, only until they expire,
// and only for what the role's policy allows.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { DescribeNetworkInterfacesCommand, DescribeRouteTablesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { resolveEmulatorConfig, startImds, type Ec2Emulator, type ImdsServer } from './index.js';
import { baseConfig, dbA, dbB, emulatorForTest, expectEc2Error, other, region, sleep, suiteTimeout } from './fixtures.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const roleName = 'pgvip-db';
const roleArn = (instanceId: string) => `arn:aws:sts::123456789012:assumed-role/${roleName}/${instanceId}`;
const authFailure = 'AWS was not able to validate the provided access credentials';

/** db-a and db-b have the role; `other` has none. The role may describe ENIs, nothing else. */
async function roleEmulator(t: TestContext, roleCredentialsTtlSeconds?: number): Promise<Ec2Emulator> {
  return emulatorForTest(
    t,
    baseConfig({
      iam: {
        roles: { [roleName]: { instances: [dbA.instanceId, dbB.instanceId], policy: { Statement: { Effect: 'Allow', Action: 'ec2:DescribeNetworkInterfaces', Resource: '*' } } } },
        ...(roleCredentialsTtlSeconds === undefined ? {} : { roleCredentialsTtlSeconds }),
      },
    }),
  );
}

async function imdsFor(t: TestContext, ec2: Ec2Emulator, instanceId: string): Promise<ImdsServer> {
  const imds = await startImds({ instanceId, source: ec2 });
  t.after(() => imds.close());
  return imds;
}

/** GET with a fresh IMDSv2 token; status and body. */
async function imdsGet(imds: ImdsServer, metadataPath: string): Promise<{ status: number; text: string }> {
  const token = await (await fetch(`${imds.url}/latest/api/token`, { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' } })).text();
  const res = await fetch(`${imds.url}/latest/meta-data/${metadataPath}`, { headers: { 'X-aws-ec2-metadata-token': token }, signal: AbortSignal.timeout(2_000) });
  return { status: res.status, text: await res.text() };
}

interface ImdsCredentials {
  Code: string;
  LastUpdated: string;
  Type: string;
  AccessKeyId: string;
  SecretAccessKey: string;
  Token: string;
  Expiration: string;
}

async function roleCredentials(imds: ImdsServer): Promise<ImdsCredentials> {
  const res = await imdsGet(imds, `iam/security-credentials/${roleName}`);
  assert.equal(res.status, 200);
  return JSON.parse(res.text) as ImdsCredentials;
}

function clientWith(
  ec2: Ec2Emulator,
  c: { AccessKeyId: string; SecretAccessKey: string; Token?: string | undefined },
): EC2Client {
  return new EC2Client({
    region,
    endpoint: ec2.url,
    maxAttempts: 1,
    credentials: {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      ...(c.Token === undefined ? {} : { sessionToken: c.Token }),
    },
  });
}

/**
 * Runs `script` (an ES module body that may `await`) in a fresh Node process whose environment has
 * no AWS keys at all, only the IMDS endpoint: what it prints on stdout comes back.
 */
function runWithInstanceRole(
  script: string,
  imdsUrl: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: '/nonexistent',
    AWS_EC2_METADATA_SERVICE_ENDPOINT: imdsUrl,
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  };
  return new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { env, cwd: repoRoot, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('instance-role credentials from IMDS', suiteTimeout, () => {
  it('serves iam/info, the role listing and the credentials document in the shape IMDS gives them', async (t) => {
    const ec2 = await roleEmulator(t);
    const imds = await imdsFor(t, ec2, dbA.instanceId);
    assert.match((await imdsGet(imds, '')).text, /^iam\/$/m, 'meta-data/ lists iam/');
    assert.equal((await imdsGet(imds, 'iam/')).text, 'info\nsecurity-credentials/');
    assert.equal((await imdsGet(imds, 'iam/security-credentials/')).text, roleName);
    const info = JSON.parse((await imdsGet(imds, 'iam/info')).text) as Record<string, string>;
    assert.deepEqual(Object.keys(info), ['Code', 'LastUpdated', 'InstanceProfileArn', 'InstanceProfileId']);
    assert.equal(info.InstanceProfileArn, `arn:aws:iam::123456789012:instance-profile/${roleName}`);
    assert.match(info.InstanceProfileId!, /^AIPA[A-Z0-9]{17}$/);

    const raw = (await imdsGet(imds, `iam/security-credentials/${roleName}`)).text;
    assert.match(raw, /^\{\n {2}"Code" : "Success",\n/, 'formatted as IMDS formats it');
    const c = JSON.parse(raw) as ImdsCredentials;
    assert.deepEqual(Object.keys(c), ['Code', 'LastUpdated', 'Type', 'AccessKeyId', 'SecretAccessKey', 'Token', 'Expiration']);
    assert.equal(c.Type, 'AWS-HMAC');
    assert.match(c.AccessKeyId, /^ASIA[A-Z0-9]{16}$/);
    assert.match(c.Expiration, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(Date.parse(c.Expiration) - Date.parse(c.LastUpdated), 6 * 3600_000, 'six hours, as EC2 issues them');
    // The same set until it is due for rotation: an SDK that asks again gets what it has.
    assert.equal((await roleCredentials(imds)).AccessKeyId, c.AccessKeyId);
  });

  it('has no iam/ for an instance without a role', async (t) => {
    const ec2 = await roleEmulator(t);
    const imds = await imdsFor(t, ec2, other.instanceId);
    assert.doesNotMatch((await imdsGet(imds, '')).text, /^iam\/$/m);
    assert.equal((await imdsGet(imds, 'iam/security-credentials/')).status, 404);
  });

  it('lets the SDK default credential chain, with no keys in the environment, call EC2 as the role of that instance', async (t) => {
    const ec2 = await roleEmulator(t);
    const imds = await imdsFor(t, ec2, dbB.instanceId);
    const script = `
      const { EC2Client, DescribeNetworkInterfacesCommand, DescribeRouteTablesCommand } = await import('@aws-sdk/client-ec2');
      const client = new EC2Client({ region: ${JSON.stringify(region)}, endpoint: ${JSON.stringify(ec2.url)}, maxAttempts: 1 });
      const out = await client.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [${JSON.stringify(dbB.eni)}] }));
      const denied = await client.send(new DescribeRouteTablesCommand({})).then(() => 'allowed', (e) => e.name);
      console.log(JSON.stringify({ eni: out.NetworkInterfaces[0].NetworkInterfaceId, denied }));`;
    const r = await runWithInstanceRole(script, imds.url);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { eni: dbB.eni, denied: 'UnauthorizedOperation' });
    const [allowed, refused] = ec2.requests();
    assert.equal(allowed?.principal, roleArn(dbB.instanceId));
    assert.match(allowed?.accessKeyId ?? '', /^ASIA/);
    assert.equal(refused?.code, 'UnauthorizedOperation');
  });

  it('accepts temporary credentials only with their own session token', async (t) => {
    const ec2 = await roleEmulator(t);
    const a = await roleCredentials(await imdsFor(t, ec2, dbA.instanceId));
    const b = await roleCredentials(await imdsFor(t, ec2, dbB.instanceId));
    assert.notEqual(a.AccessKeyId, b.AccessKeyId, 'each instance has its own session');
    await clientWith(ec2, a).send(new DescribeNetworkInterfacesCommand({}));
    assert.equal(ec2.requests().at(-1)?.principal, roleArn(dbA.instanceId));
    const describe = new DescribeNetworkInterfacesCommand({});
    await expectEc2Error(clientWith(ec2, { ...a, Token: undefined }).send(describe), 'AuthFailure', 401, authFailure);
    await expectEc2Error(clientWith(ec2, { ...a, Token: b.Token }).send(describe), 'AuthFailure', 401, authFailure);
    await expectEc2Error(clientWith(ec2, { ...a, SecretAccessKey: b.SecretAccessKey }).send(describe), 'AuthFailure', 401, authFailure);
  });

  it('refuses role credentials after their expiration with RequestExpired, and hands out fresh ones before that', async (t) => {
    const ec2 = await roleEmulator(t, 2);
    const imds = await imdsFor(t, ec2, dbA.instanceId);
    const first = await roleCredentials(imds);
    await clientWith(ec2, first).send(new DescribeNetworkInterfacesCommand({}));
    // Within the last half of their life (or last five minutes), IMDS already serves the next set.
    await sleep(1_100);
    const second = await roleCredentials(imds);
    assert.notEqual(second.AccessKeyId, first.AccessKeyId);
    await sleep(Date.parse(first.Expiration) - Date.now() + 100);
    await expectEc2Error(clientWith(ec2, first).send(new DescribeNetworkInterfacesCommand({})), 'RequestExpired', 400, 'Request has expired.');
    const third = await roleCredentials(imds);
    await clientWith(ec2, third).send(new DescribeNetworkInterfacesCommand({}));
  });

  it('rejects a role attached to an instance without a network interface, or to an instance twice', () => {
    const policy = { Statement: { Effect: 'Allow' as const, Action: 'ec2:*', Resource: '*' } };
    assert.throws(() => resolveEmulatorConfig(baseConfig({ iam: { roles: { a: { instances: ['i-0fff'], policy } } } })), /no network interface is attached to i-0fff[^\n]*\n\s+→ at iam\.roles\.a\.instances\[0\]/);
    assert.throws(() => resolveEmulatorConfig(baseConfig({ iam: { roles: { a: { instances: [dbA.instanceId], policy }, b: { instances: [dbA.instanceId], policy } } } })), /i-0aaa already has the role a/);
  });
});

describe('DescribeRouteTables as a role without the permission', suiteTimeout, () => {
  it('names the instance role session in the UnauthorizedOperation message', async (t) => {
    const ec2 = await roleEmulator(t);
    const c = await roleCredentials(await imdsFor(t, ec2, dbA.instanceId));
    await expectEc2Error(clientWith(ec2, c).send(new DescribeRouteTablesCommand({})), 'UnauthorizedOperation', 403, new RegExp(`User: ${roleArn(dbA.instanceId)} is not authorized to perform: ec2:DescribeRouteTables`));
  });
});
