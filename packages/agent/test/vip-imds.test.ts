// Goal: the IMDSv2 client holds one session token and renews it before expiry or on 401, bounds
// every request, and discovery reads instance, ENI, MAC, region and subnet prefix from IMDS while
// configured values win.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { defaultImdsEndpoint, discoverVipTarget, httpExchange, ImdsClient, type ImdsExchange } from '@pgvip/agent';
import { isPgvipError } from '@pgvip/shared';
import { baseConfig, dbA, dbB, emulatorForTest, region, suiteTimeout } from '../../../test/ec2-emulator/fixtures.js';
import { imdsForTest, routeTableVip, secondaryIpVip } from './vip-helpers.js';

/** An exchange that records the method and path of each request before passing it on. */
function countingExchange(): { exchange: ImdsExchange; requests: string[] } {
  const requests: string[] = [];
  const counted: ImdsExchange = (url, init) => {
    requests.push(`${init.method} ${new URL(url).pathname}`);
    return httpExchange(url, init);
  };
  return { exchange: counted, requests };
}

/** A controllable monotonic clock. */
function manualClock(startMs = 1_000): { now: () => number; advance: (ms: number) => void } {
  let nowMs = startMs;
  return { now: () => nowMs, advance: (ms) => void (nowMs += ms) };
}

/** An HTTP server that accepts requests and never answers (IMDS behind a too-low hop limit). */
async function silentServer(t: TestContext): Promise<string> {
  const server = createServer(() => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A loopback URL nobody listens on (a port just released). */
async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

describe('IMDSv2 client against the emulator', suiteTimeout, () => {
  it('fetches one session token and reuses it for every GET', async (t) => {
    const ec2 = await emulatorForTest(t);
    const imds = await imdsForTest(t, ec2, dbA.instanceId);
    const { exchange, requests } = countingExchange();
    const client = new ImdsClient({ endpoint: imds.url, exchange });
    assert.equal(await client.get('instance-id'), dbA.instanceId);
    assert.equal(await client.get('placement/region'), region);
    assert.deepEqual(await Promise.all([client.get('mac'), client.get('local-ipv4')]), [dbA.mac, dbA.primaryIp]);
    assert.deepEqual(requests.filter((r) => r.startsWith('PUT')), ['PUT /latest/api/token'], 'one token for all, even for concurrent GETs');
    assert.equal(requests.filter((r) => r.startsWith('GET')).length, 4);
  });

  it('renews the token shortly before it expires', async (t) => {
    const ec2 = await emulatorForTest(t);
    const imds = await imdsForTest(t, ec2, dbA.instanceId);
    const clock = manualClock();
    const { exchange, requests } = countingExchange();
    const client = new ImdsClient({ endpoint: imds.url, exchange, tokenTtlSeconds: 600, clock: clock.now });
    await client.get('instance-id');
    clock.advance(530_000); // 70 s before expiry: still good
    await client.get('instance-id');
    assert.equal(requests.filter((r) => r.startsWith('PUT')).length, 1);
    clock.advance(20_000); // 50 s before expiry: inside the renewal margin (a tenth of the TTL, at most a minute)
    await client.get('instance-id');
    assert.equal(requests.filter((r) => r.startsWith('PUT')).length, 2);
  });

  it('fetches a new token when IMDS answers 401, and the GET then succeeds', async (t) => {
    const ec2 = await emulatorForTest(t);
    const imdsClock = manualClock();
    // IMDS's clock runs ahead of ours: it expires the token while we still think it valid.
    const imds = await imdsForTest(t, ec2, dbA.instanceId, imdsClock.now);
    const { exchange, requests } = countingExchange();
    const client = new ImdsClient({ endpoint: imds.url, exchange, tokenTtlSeconds: 60 });
    await client.get('instance-id');
    imdsClock.advance(61_000);
    assert.equal(await client.get('mac'), dbA.mac);
    assert.deepEqual(requests, ['PUT /latest/api/token', 'GET /latest/meta-data/instance-id', 'GET /latest/meta-data/mac', 'PUT /latest/api/token', 'GET /latest/meta-data/mac']);
  });

  it('reports a missing item as PGVIP_VIP_IMDS naming the path', async (t) => {
    const ec2 = await emulatorForTest(t);
    const imds = await imdsForTest(t, ec2, dbA.instanceId);
    const client = new ImdsClient({ endpoint: imds.url });
    await assert.rejects(client.get('no/such/item'), (err) => isPgvipError(err, 'PGVIP_VIP_IMDS') && /no\/such\/item \(404\)/.test(err.detail));
  });

  it('gives up on a silent IMDS after its request timeout', async (t) => {
    const url = await silentServer(t);
    const client = new ImdsClient({ endpoint: url, requestTimeoutMs: 200 });
    const started = performance.now();
    await assert.rejects(client.get('instance-id'), (err) => isPgvipError(err, 'PGVIP_VIP_IMDS') && /did not answer within 200 ms/.test(err.detail));
    assert.ok(performance.now() - started < 1_000);
  });

  it('refuses an endless answer at the reply cap instead of buffering it', async (t) => {
    // Whatever answers at the IMDS address (a misrouted link-local address, a proxy) decides the size.
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' }); // chunked, no content-length
      const pump = () => {
        while (res.write(chunk)) if (res.destroyed) return;
      };
      res.on('drain', pump);
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));
    const client = new ImdsClient({ endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requestTimeoutMs: 5_000 });
    await assert.rejects(client.get('instance-id'), (err) => isPgvipError(err, 'PGVIP_REPLY_TOO_LARGE') && /IMDS at http:\/\/127\.0\.0\.1:\d+ /.test(err.detail));
  });

  it('reports an unreachable IMDS as PGVIP_VIP_IMDS with the reason', async () => {
    const client = new ImdsClient({ endpoint: await closedPortUrl(), requestTimeoutMs: 500 });
    await assert.rejects(client.get('instance-id'), (err) => isPgvipError(err, 'PGVIP_VIP_IMDS') && /ECONNREFUSED/.test(err.detail));
  });

  it('defaults to the link-local endpoint (never contacted by these tests)', () => {
    assert.equal(defaultImdsEndpoint, 'http://169.254.169.254');
    assert.equal(new ImdsClient().endpoint, defaultImdsEndpoint);
  });
});

describe('discovery', suiteTimeout, () => {
  it('learns instance, primary ENI, MAC, region and subnet prefix from IMDS', async (t) => {
    const ec2 = await emulatorForTest(t);
    const imds = await imdsForTest(t, ec2, dbB.instanceId);
    const target = await discoverVipTarget(secondaryIpVip({ discovery: 'imds', region: undefined, prefixLength: undefined }), undefined, new ImdsClient({ endpoint: imds.url }));
    assert.deepEqual(target, { region, eniId: dbB.eni, instanceId: dbB.instanceId, mac: dbB.mac, prefixLength: 24 });
  });

  it('lets configured values win over IMDS, and uses /32 in route-table mode', async (t) => {
    const ec2 = await emulatorForTest(t);
    const imds = await imdsForTest(t, ec2, dbB.instanceId);
    const client = new ImdsClient({ endpoint: imds.url });
    const configured = await discoverVipTarget(secondaryIpVip({ discovery: 'imds', region: 'us-east-1', prefixLength: 26 }), { eniId: dbB.eni, instanceId: 'i-0bbb' }, client);
    assert.deepEqual(configured, { region: 'us-east-1', eniId: dbB.eni, instanceId: 'i-0bbb', mac: dbB.mac, prefixLength: 26 });
    const routed = await discoverVipTarget(routeTableVip('198.19.0.10', ['rtb-0a1'], { discovery: 'imds', region: undefined }), undefined, client);
    assert.equal(routed.prefixLength, 32);
  });

  it('finds a configured secondary ENI among the instance interfaces by MAC', async (t) => {
    const config = baseConfig();
    const ec2 = await emulatorForTest(
      t,
      baseConfig({
        networkInterfaces: [
          ...config.networkInterfaces!,
          { id: 'eni-0bbb2', instanceId: dbB.instanceId, deviceIndex: 1, subnetId: 'subnet-0a1', macAddress: '02:00:00:00:0b:02', privateIpAddress: '198.18.1.12' },
        ],
      }),
    );
    const imds = await imdsForTest(t, ec2, dbB.instanceId);
    const client = new ImdsClient({ endpoint: imds.url });
    const target = await discoverVipTarget(secondaryIpVip({ discovery: 'imds' }), { eniId: 'eni-0bbb2' }, client);
    assert.equal(target.mac, '02:00:00:00:0b:02');
    await assert.rejects(
      discoverVipTarget(secondaryIpVip({ discovery: 'imds' }), { eniId: dbA.eni }, client),
      (err) => isPgvipError(err, 'PGVIP_VIP_NOT_FOUND') && err.detail.includes(`${dbA.eni} (this node's vip.eniId) is not attached to this instance`),
    );
  });

  it('with discovery "config" never contacts IMDS', async (t) => {
    const url = await silentServer(t);
    const { exchange, requests } = countingExchange();
    const target = await discoverVipTarget(secondaryIpVip({ discovery: 'config' }), { eniId: dbB.eni }, new ImdsClient({ endpoint: url, exchange }));
    assert.deepEqual(target, { region, eniId: dbB.eni, instanceId: undefined, mac: undefined, prefixLength: 24 });
    assert.deepEqual(requests, []);
  });

  it('with discovery "config" refuses a config that lacks the ENI', async () => {
    await assert.rejects(discoverVipTarget(secondaryIpVip({ discovery: 'config' }), undefined, undefined), (err) => isPgvipError(err, 'PGVIP_CONFIG_INVALID') && /vip\.eniId/.test(err.detail));
  });
});
