// Goal: every injected fault (throttle, 5xx, hang, lost response) reaches the real SDK the way AWS failures do.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AssignPrivateIpAddressesCommand, DescribeNetworkInterfacesCommand } from '@aws-sdk/client-ec2';
import { FaultInjector } from './faults.js';
import { holderOfAddress, startEc2Emulator } from './index.js';
import { baseConfig, dbA, dbB, ec2Client, emulatorForTest, expectEc2Error, postQuery, vip, suiteTimeout } from './fixtures.js';

const moveVipToDbB = new AssignPrivateIpAddressesCommand({
  NetworkInterfaceId: dbB.eni,
  PrivateIpAddresses: [vip],
  AllowReassignment: true,
});

describe('throttling and server errors', suiteTimeout, () => {
  it('throttles with RequestLimitExceeded 503, which the SDK retries with backoff', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({ faults: { rules: [{ action: 'AssignPrivateIpAddresses', kind: 'throttle', count: 2 }] } }));
    const out = await ec2Client(ec2.url, { maxAttempts: 3 }).send(moveVipToDbB);
    assert.equal(out.$metadata.attempts, 3);
    assert.deepEqual(ec2.requests({ action: 'AssignPrivateIpAddresses' }).map((r) => r.code ?? r.outcome), ['RequestLimitExceeded', 'RequestLimitExceeded', 'ok']);
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbB.eni);
  });

  it('gives up on throttling when the SDK runs out of attempts', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({ faults: { rules: [{ action: '*', kind: 'throttle' }] } }));
    await expectEc2Error(ec2Client(ec2.url).send(moveVipToDbB), 'RequestLimitExceeded', 503, 'Request limit exceeded.');
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbA.eni, 'a throttled call changes nothing');
  });

  it('answers InternalError 500 and Unavailable 503, and the SDK retries both', async (t) => {
    const ec2 = await emulatorForTest(t);
    ec2.setFaults([{ action: 'DescribeNetworkInterfaces', kind: 'internal-error', count: 1 }]);
    await expectEc2Error(ec2Client(ec2.url).send(new DescribeNetworkInterfacesCommand({})), 'InternalError', 500);
    ec2.setFaults([{ action: 'DescribeNetworkInterfaces', kind: 'unavailable', count: 1 }]);
    await expectEc2Error(ec2Client(ec2.url).send(new DescribeNetworkInterfacesCommand({})), 'Unavailable', 503);
    ec2.setFaults([
      { action: 'AssignPrivateIpAddresses', kind: 'internal-error', count: 1 },
      { action: 'AssignPrivateIpAddresses', kind: 'unavailable', count: 1 },
    ]);
    const out = await ec2Client(ec2.url, { maxAttempts: 3 }).send(moveVipToDbB);
    assert.equal(out.$metadata.attempts, 3);
  });
});

describe('hangs and lost responses', suiteTimeout, () => {
  it('hangs until the client times out, without applying the call', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({ faults: { rules: [{ action: 'AssignPrivateIpAddresses', kind: 'hang', count: 1 }] } }));
    const started = performance.now();
    await assert.rejects(ec2Client(ec2.url, { requestTimeoutMs: 300 }).send(moveVipToDbB), (err: Error) => err.name === 'TimeoutError');
    const waitedMs = performance.now() - started;
    assert.ok(waitedMs >= 280 && waitedMs < 3_000, `the client gave up after its timeout (${waitedMs} ms)`);
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbA.eni);
    assert.deepEqual(ec2.requests().map((r) => r.outcome), ['hang']);
  });

  it('closes promptly while a request hangs', async () => {
    const ec2 = await startEc2Emulator(baseConfig({ faults: { rules: [{ action: '*', kind: 'hang' }] } }));
    const hung = ec2Client(ec2.url, { requestTimeoutMs: 10_000 }).send(new DescribeNetworkInterfacesCommand({}));
    hung.catch(() => {}); // rejected below, when the emulator cuts the connection
    while (ec2.requests().length === 0) await new Promise((r) => setTimeout(r, 10));
    const started = performance.now();
    await ec2.close();
    assert.ok(performance.now() - started < 1_000);
    await assert.rejects(hung);
  });

  it('applies the mutation and then cuts the connection: the client sees an error for a call that succeeded', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({ faults: { rules: [{ action: 'AssignPrivateIpAddresses', kind: 'lost-response', count: 1 }] } }));
    await assert.rejects(ec2Client(ec2.url).send(moveVipToDbB), (err: Error & { code?: string }) => {
      assert.ok(err.code === 'ECONNRESET' || /socket hang up/.test(err.message), `a connection error, got ${err.name}: ${err.message}`);
      return true;
    });
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbB.eni, 'the VIP moved although the client saw a failure');
    assert.deepEqual(ec2.requests().map((r) => r.outcome), ['lost-response']);
  });

  it('lets an idempotent retry after a lost response succeed', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({ faults: { rules: [{ action: 'AssignPrivateIpAddresses', kind: 'lost-response', count: 1 }] } }));
    const out = await ec2Client(ec2.url, { maxAttempts: 2 }).send(moveVipToDbB);
    assert.equal(out.$metadata.attempts, 2);
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbB.eni);
  });
});

describe('fault rules', suiteTimeout, () => {
  it('replays the same probabilistic faults from the same seed', async (t) => {
    const ec2 = await emulatorForTest(t);
    const run = async (seed: number) => {
      ec2.setFaults({ seed, rules: [{ action: 'DescribeNetworkInterfaces', kind: 'unavailable', probability: 0.5 }] });
      const codes: string[] = [];
      for (let i = 0; i < 20; i++) codes.push((await postQuery(ec2.url, { Action: 'DescribeNetworkInterfaces' })).code ?? 'ok');
      return codes;
    };
    const first = await run(7);
    assert.deepEqual(await run(7), first);
    const failures = first.filter((c) => c === 'Unavailable').length;
    assert.ok(failures > 2 && failures < 18, `about half fail (${failures}/20)`);
    assert.notDeepEqual(await run(8), first);
  });

  it('skips, counts and matches actions as configured', () => {
    const faults = new FaultInjector({
      rules: [
        { action: 'ReplaceRoute', kind: 'throttle', skip: 1, count: 1 },
        { action: '*', kind: 'internal-error', count: 1 },
      ],
    });
    assert.deepEqual(['ReplaceRoute', 'ReplaceRoute', 'ReplaceRoute', 'CreateRoute', 'CreateRoute'].map((a) => faults.pick(a)), [
      'internal-error', // ReplaceRoute's rule skips the first call; the catch-all rule fires once
      'throttle',
      undefined,
      undefined,
      undefined,
    ]);
    assert.deepEqual(faults.status().rules.map((r) => [r.seen, r.fired]), [[3, 1], [4, 1]]);
  });

  it('is configured at runtime through the admin API', async (t) => {
    const ec2 = await emulatorForTest(t);
    const set = await fetch(`${ec2.url}/__admin/faults`, {
      method: 'POST',
      body: JSON.stringify({ seed: 3, rules: [{ action: 'DescribeNetworkInterfaces', kind: 'throttle', count: 1 }] }),
    });
    assert.equal(set.status, 200);
    assert.equal((await postQuery(ec2.url, { Action: 'DescribeNetworkInterfaces' })).code, 'RequestLimitExceeded');
    assert.equal((await postQuery(ec2.url, { Action: 'DescribeNetworkInterfaces' })).status, 200);
    const status = (await (await fetch(`${ec2.url}/__admin/faults`)).json()) as { seed: number; rules: Array<{ fired: number }> };
    assert.equal(status.seed, 3);
    assert.equal(status.rules[0]?.fired, 1);
    // A bare list of rules is accepted too.
    await fetch(`${ec2.url}/__admin/faults`, { method: 'POST', body: JSON.stringify([{ action: '*', kind: 'unavailable' }]) });
    assert.equal((await postQuery(ec2.url, { Action: 'DescribeRouteTables' })).code, 'Unavailable');
    await fetch(`${ec2.url}/__admin/faults`, { method: 'DELETE' });
    assert.equal((await postQuery(ec2.url, { Action: 'DescribeRouteTables' })).status, 200);
    const bad = await fetch(`${ec2.url}/__admin/faults`, { method: 'POST', body: JSON.stringify({ rules: [{ action: '*', kind: 'explode' }] }) });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /kind/);
  });
});
