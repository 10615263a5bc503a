// Goal: IMDSv2 serves one instance's metadata behind a session token, with AWS's status codes, and
// trails the remap by imdsLagMs.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { AssignPrivateIpAddressesCommand } from '@aws-sdk/client-ec2';
import { remoteImdsSource, startImds, type Ec2Emulator, type ImdsServer } from './index.js';
import { baseConfig, dbA, dbB, ec2Client, emulatorForTest, eventually, sleep, suiteTimeout, vip } from './fixtures.js';

const ttlHeader = 'X-aws-ec2-metadata-token-ttl-seconds';

async function imdsForTest(
  t: TestContext,
  ec2: Ec2Emulator,
  instanceId: string,
  tokensRequired = true,
): Promise<ImdsServer> {
  const imds = await startImds({ instanceId, source: ec2, tokensRequired });
  t.after(() => imds.close());
  return imds;
}

/** Plain fetch with a timeout, the way pgvip reads IMDS (no SDK). */
function call(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(2_000) });
}

async function token(imds: ImdsServer, ttlSeconds = 60): Promise<string> {
  const res = await call(`${imds.url}/latest/api/token`, { method: 'PUT', headers: { [ttlHeader]: String(ttlSeconds) } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get(ttlHeader), String(ttlSeconds));
  return res.text();
}

async function metadata(imds: ImdsServer, path: string, sessionToken: string): Promise<string> {
  const res = await call(`${imds.url}/latest/meta-data/${path}`, { headers: { 'X-aws-ec2-metadata-token': sessionToken } });
  assert.equal(res.status, 200, `GET ${path}`);
  return res.text();
}

describe('IMDSv2 session tokens', suiteTimeout, () => {
  it('issues a token for a valid TTL and serves metadata to requests that carry it', async (t) => {
    const ec2 = await emulatorForTest(t);
    const imds = await imdsForTest(t, ec2, dbA.instanceId);
    const session = await token(imds, 21_600);
    assert.ok(session.length >= 40);
    assert.equal(await metadata(imds, 'instance-id', session), dbA.instanceId);
  });

  it('answers 400 to a token request with a missing or invalid TTL', async (t) => {
    const ec2 = await emulatorForTest(t);
    const imds = await imdsForTest(t, ec2, dbA.instanceId);
    const put = (headers: Record<string, string>) => call(`${imds.url}/latest/api/token`, { method: 'PUT', headers }).then((r) => r.status);
    assert.equal(await put({}), 400);
    for (const ttl of ['0', '21601', 'abc', '-5', '1.5']) assert.equal(await put({ [ttlHeader]: ttl }), 400, `TTL ${ttl}`);
    assert.equal(await put({ [ttlHeader]: '1' }), 200);
  });

  it('answers 403 to a token request that came through a proxy (X-Forwarded-For)', async (t) => {
    const ec2 = await emulatorForTest(t);
    const imds = await imdsForTest(t, ec2, dbA.instanceId);
    const res = await call(`${imds.url}/latest/api/token`, { method: 'PUT', headers: { [ttlHeader]: '60', 'X-Forwarded-For': '198.18.9.9' } });
    assert.equal(res.status, 403);
  });

  it('answers 401 without a token, with an unknown token and with an expired one', async (t) => {
    const ec2 = await emulatorForTest(t);
    const imds = await imdsForTest(t, ec2, dbA.instanceId);
    const get = (headers: Record<string, string>) => call(`${imds.url}/latest/meta-data/instance-id`, { headers }).then((r) => r.status);
    assert.equal(await get({}), 401);
    assert.equal(await get({ 'X-aws-ec2-metadata-token': 'forged' }), 401);
    const shortLived = await token(imds, 1);
    assert.equal(await get({ 'X-aws-ec2-metadata-token': shortLived }), 200);
    await sleep(1_100);
    assert.equal(await get({ 'X-aws-ec2-metadata-token': shortLived }), 401);
  });

  it('accepts token-less GETs only when configured for IMDSv1 too', async (t) => {
    const ec2 = await emulatorForTest(t);
    const imds = await imdsForTest(t, ec2, dbA.instanceId, false);
    assert.equal(await (await call(`${imds.url}/latest/meta-data/instance-id`)).text(), dbA.instanceId);
    assert.equal((await call(`${imds.url}/latest/meta-data/instance-id`, { headers: { 'X-aws-ec2-metadata-token': 'forged' } })).status, 401);
  });

  it('refuses other methods with 405', async (t) => {
    const ec2 = await emulatorForTest(t);
    const imds = await imdsForTest(t, ec2, dbA.instanceId);
    assert.equal((await call(`${imds.url}/latest/api/token`)).status, 405);
    assert.equal((await call(`${imds.url}/latest/meta-data/instance-id`, { method: 'POST' })).status, 405);
  });
});

describe('IMDS metadata paths', suiteTimeout, () => {
  it('serves every path VIP discovery reads, for its own instance only', async (t) => {
    const ec2 = await emulatorForTest(t);
    const imds = await imdsForTest(t, ec2, dbA.instanceId);
    const session = await token(imds);
    const get = (path: string) => metadata(imds, path, session);
    const macPath = `network/interfaces/macs/${dbA.mac}`;
    assert.equal(await get('instance-id'), dbA.instanceId);
    assert.equal(await get('mac'), dbA.mac);
    assert.equal(await get('local-ipv4'), dbA.primaryIp);
    assert.equal(await get('network/interfaces/macs/'), `${dbA.mac}/`);
    assert.equal(await get(`${macPath}/interface-id`), dbA.eni);
    assert.equal(await get(`${macPath}/local-ipv4s`), `${dbA.primaryIp}\n${vip}`);
    assert.equal(await get(`${macPath}/subnet-id`), 'subnet-0a1');
    assert.equal(await get(`${macPath}/vpc-id`), 'vpc-0a1');
    assert.equal(await get(`${macPath}/subnet-ipv4-cidr-block`), '198.18.1.0/24');
    assert.equal(await get('placement/region'), 'us-east-1');
    assert.equal(await get('placement/availability-zone'), 'us-east-1a');
    assert.match(await get(''), /^instance-id$/m);

    const other = await imdsForTest(t, ec2, dbB.instanceId);
    assert.equal(await metadata(other, 'instance-id', await token(other)), dbB.instanceId);
    assert.equal((await call(`${imds.url}/latest/meta-data/network/interfaces/macs/${dbB.mac}/interface-id`, { headers: { 'X-aws-ec2-metadata-token': session } })).status, 404);
  });

  it('accepts the double slash that @aws-sdk/ec2-metadata-service sends, and 404s unknown paths', async (t) => {
    const ec2 = await emulatorForTest(t);
    const imds = await imdsForTest(t, ec2, dbA.instanceId);
    const tokenRes = await call(`${imds.url}//latest/api/token`, { method: 'PUT', headers: { [ttlHeader]: '60' } });
    assert.equal(tokenRes.status, 200);
    const session = await tokenRes.text();
    const res = await call(`${imds.url}//latest/meta-data/instance-id`, { headers: { 'X-aws-ec2-metadata-token': session } });
    assert.equal(await res.text(), dbA.instanceId);
    assert.equal((await call(`${imds.url}/latest/meta-data/ami-launch-index`, { headers: { 'X-aws-ec2-metadata-token': session } })).status, 404);
  });

  it('lists every ENI of a multi-homed instance, the primary interface first', async (t) => {
    const config = baseConfig();
    const secondEni = { id: 'eni-0b2', instanceId: dbB.instanceId, deviceIndex: 1, subnetId: 'subnet-0b2', macAddress: '02:00:00:00:0b:02', privateIpAddress: '198.18.2.12' };
    const ec2 = await emulatorForTest(t, { ...config, networkInterfaces: [...config.networkInterfaces!, secondEni] });
    const imds = await imdsForTest(t, ec2, dbB.instanceId);
    const session = await token(imds);
    assert.equal(await metadata(imds, 'network/interfaces/macs/', session), `${dbB.mac}/\n02:00:00:00:0b:02/`);
    assert.equal(await metadata(imds, 'mac', session), dbB.mac);
    assert.equal(await metadata(imds, 'network/interfaces/macs/02:00:00:00:0b:02/subnet-ipv4-cidr-block', session), '198.18.2.0/24');
    assert.equal(await metadata(imds, 'network/interfaces/macs/02:00:00:00:0b:02/device-number', session), '1');
  });

  it('refuses to serve an instance the emulator does not know', async (t) => {
    const ec2 = await emulatorForTest(t);
    await assert.rejects(startImds({ instanceId: 'i-0fff', source: ec2 }), /instance i-0fff has no network interface/);
  });
});

describe('IMDS and the remap', suiteTimeout, () => {
  it('shows the VIP in local-ipv4s only after the remap and the IMDS lag', async (t) => {
    const remapDelayMs = 200;
    const imdsLagMs = 300;
    const ec2 = await emulatorForTest(t, baseConfig({ timing: { remapDelayMs, describeStaleMs: 0, imdsLagMs } }));
    const imds = await imdsForTest(t, ec2, dbB.instanceId);
    const session = await token(imds);
    const localIpv4s = () => metadata(imds, `network/interfaces/macs/${dbB.mac}/local-ipv4s`, session);
    assert.equal(await localIpv4s(), dbB.primaryIp);
    const started = performance.now();
    await ec2Client(ec2.url).send(new AssignPrivateIpAddressesCommand({
      NetworkInterfaceId: dbB.eni,
      PrivateIpAddresses: [vip],
      AllowReassignment: true,
    }));
    await eventually(async () => ((await localIpv4s()) === `${dbB.primaryIp}\n${vip}` ? true : undefined), 3_000, 'the VIP in local-ipv4s');
    const elapsedMs = performance.now() - started;
    assert.ok(elapsedMs >= remapDelayMs + imdsLagMs - 20, `visible after ${elapsedMs} ms`);
  });

  it('serves the view of an emulator in another process through its admin API', async (t) => {
    const ec2 = await emulatorForTest(t);
    const imds = await startImds({ instanceId: dbB.instanceId, source: remoteImdsSource(ec2.url) });
    t.after(() => imds.close());
    const session = await token(imds);
    assert.equal(await metadata(imds, 'local-ipv4', session), dbB.primaryIp);
    await ec2Client(ec2.url).send(new AssignPrivateIpAddressesCommand({
      NetworkInterfaceId: dbB.eni,
      PrivateIpAddresses: [vip],
      AllowReassignment: true,
    }));
    assert.equal(await metadata(imds, `network/interfaces/macs/${dbB.mac}/local-ipv4s`, session), `${dbB.primaryIp}\n${vip}`);
  });
});
