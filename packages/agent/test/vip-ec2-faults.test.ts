// Goal: every EC2 fault kind is survived the way the failover needs it — throttling, 5xx, hangs and
// lost answers retried within the budget, 4xx not retried — and no attempt ever starts after the
// budget.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPgvipError } from '@pgvip/shared';
import { holderOfAddress, startEc2Emulator, type FaultRule } from '../../../test/ec2-emulator/index.js';
import { baseConfig, dbA, dbB, emulatorForTest, suiteTimeout, vip } from '../../../test/ec2-emulator/fixtures.js';
import { emulatedPort, secondaryIpVip, testSecret } from './vip-helpers.js';

const nodeB = { eniId: dbB.eni, instanceId: dbB.instanceId };
const faulty = (...rules: FaultRule[]) => baseConfig({ faults: { rules } });
const outcomes = (requests: { code?: string; outcome: string }[]) => requests.map((r) => r.code ?? r.outcome);

describe('EC2 faults on the move', suiteTimeout, () => {
  it('retries throttling (RequestLimitExceeded) with backoff and succeeds, logging each attempt', async (t) => {
    const ec2 = await emulatorForTest(t, faulty({ action: 'AssignPrivateIpAddresses', kind: 'throttle', count: 2 }));
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeB });
    const { requestIds } = await b.port.moveInCloud({ term: 2, budgetMs: 2_000 });
    const assigns = ec2.requests({ action: 'AssignPrivateIpAddresses' });
    assert.deepEqual(outcomes(assigns), ['RequestLimitExceeded', 'RequestLimitExceeded', 'ok']);
    assert.deepEqual(requestIds, [assigns[2]!.requestId]);
    const attempts = b.logs.filter((l) => l.action === 'AssignPrivateIpAddresses');
    assert.deepEqual(attempts.map((l) => [l.attempt, l.awsCode ?? 'ok', l.requestId]), assigns.map((r, i) => [i + 1, r.code ?? 'ok', r.requestId]));
    assert.ok(attempts.slice(0, 2).every((l) => typeof l.retryInMs === 'number' && l.failure === 'throttled'));
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbB.eni);
  });

  it('retries InternalError 500 and Unavailable 503', async (t) => {
    const ec2 = await emulatorForTest(
      t,
      faulty({ action: 'AssignPrivateIpAddresses', kind: 'internal-error', count: 1 }, { action: 'AssignPrivateIpAddresses', kind: 'unavailable', count: 1 }),
    );
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeB });
    await b.port.moveInCloud({ term: 2, budgetMs: 2_000 });
    assert.deepEqual(outcomes(ec2.requests()), ['InternalError', 'Unavailable', 'ok']);
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbB.eni);
  });

  it('cuts a hung attempt at its timeout and succeeds with the next one', async (t) => {
    const ec2 = await emulatorForTest(t, faulty({ action: 'AssignPrivateIpAddresses', kind: 'hang', count: 1 }));
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeB, timeouts: { ec2AttemptMs: 200 } });
    const started = performance.now();
    await b.port.moveInCloud({ term: 2, budgetMs: 2_000 });
    assert.ok(performance.now() - started >= 190, 'the first attempt waited out its timeout');
    assert.deepEqual(outcomes(ec2.requests()), ['hang', 'ok']);
    assert.equal(b.logs.find((l) => l.attempt === 1)?.failure, 'timeout');
  });

  it('fails with PGVIP_VIP_TIMEOUT when every attempt hangs, having retried only within the budget', async (t) => {
    const ec2 = await emulatorForTest(t, faulty({ action: 'AssignPrivateIpAddresses', kind: 'hang' }));
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeB, timeouts: { ec2AttemptMs: 200 } });
    const budgetMs = 900;
    const startedWall = Date.now();
    const started = performance.now();
    await assert.rejects(b.port.moveInCloud({ term: 2, budgetMs }), (err) => isPgvipError(err, 'PGVIP_VIP_TIMEOUT') && /TimeoutError/.test(err.detail));
    const elapsedMs = performance.now() - started;
    const attempts = ec2.requests();
    assert.ok(attempts.length >= 3, `several attempts fit in the budget (${attempts.length})`);
    assert.ok(attempts.every((r) => r.outcome === 'hang'));
    assert.ok(attempts.every((r) => r.atMs - startedWall <= budgetMs), `no attempt started after ${budgetMs} ms: ${attempts.map((r) => r.atMs - startedWall).join(', ')}`);
    assert.ok(elapsedMs < budgetMs + 200 + 150, `done within the budget plus one attempt (${Math.round(elapsedMs)} ms)`);
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbA.eni, 'nothing moved');
  });

  it('retries after a lost response and succeeds: the move had landed, the repeat is a no-op', async (t) => {
    const ec2 = await emulatorForTest(t, faulty({ action: 'AssignPrivateIpAddresses', kind: 'lost-response', count: 1 }));
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeB });
    const { requestIds } = await b.port.moveInCloud({ term: 2, budgetMs: 2_000 });
    assert.deepEqual(outcomes(ec2.requests()), ['lost-response', 'ok']);
    assert.deepEqual(requestIds, [ec2.requests()[1]!.requestId]);
    assert.equal(b.logs.find((l) => l.attempt === 1)?.failure, 'network');
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbB.eni);
  });

  it('retries when EC2 refuses the host\'s clock (20 min off): the SDK corrects its offset from the answer and the next attempt goes through', async (t) => {
    // EC2's clock 20 minutes ahead of this host's, signatures verified: the first request is dated too far back.
    const ec2 = await startEc2Emulator(
      baseConfig({ iam: { accessKeys: { AKIDVIPTESTS00001: { secretAccessKey: testSecret, policy: { Statement: { Effect: 'Allow', Action: 'ec2:*', Resource: '*' } } } } } }),
      { wallClock: () => Date.now() + 20 * 60_000 },
    );
    t.after(() => ec2.close());
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeB });
    await b.port.moveInCloud({ term: 2, budgetMs: 2_000 });
    assert.deepEqual(outcomes(ec2.requests()), ['RequestExpired', 'ok']);
    assert.equal(b.logs.find((l) => l.attempt === 1)?.failure, 'clock-skew');
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbB.eni);
  });

  it('keeps throttled retries inside the budget and then fails with PGVIP_VIP_TIMEOUT naming the last error', async (t) => {
    const ec2 = await emulatorForTest(t, faulty({ action: 'AssignPrivateIpAddresses', kind: 'throttle' }));
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeB });
    // Long enough for a second attempt even when the first one is slow (the SDK's first call loads
    // and signs on a busy host); the assertion is that none starts after the budget.
    const budgetMs = 1_500;
    const startedWall = Date.now();
    await assert.rejects(b.port.moveInCloud({ term: 2, budgetMs }), (err) => isPgvipError(err, 'PGVIP_VIP_TIMEOUT') && /RequestLimitExceeded/.test(err.detail));
    const attempts = ec2.requests();
    assert.ok(attempts.length >= 2, `retried (${attempts.length} attempts)`);
    assert.ok(attempts.every((r) => r.atMs - startedWall <= budgetMs), 'no attempt started after the budget');
  });

  it('does not start an attempt whose backoff would end after the budget', async (t) => {
    const ec2 = await emulatorForTest(t, faulty({ action: 'AssignPrivateIpAddresses', kind: 'throttle' }));
    // The jitter draws its maximum: the first backoff is 500 ms, more than the 300 ms budget.
    const b = emulatedPort(t, ec2, {
      vip: secondaryIpVip(),
      self: nodeB,
      retry: { baseDelayMs: 500, maxDelayMs: 500 },
      random: () => 0.999,
    });
    const started = performance.now();
    await assert.rejects(b.port.moveInCloud({ term: 2, budgetMs: 300 }), (err) => isPgvipError(err, 'PGVIP_VIP_TIMEOUT') && /1 attempt\b/.test(err.detail));
    assert.equal(ec2.requests().length, 1);
    assert.ok(performance.now() - started < 250, 'it gave up at once instead of sleeping into the deadline');
  });

  it('makes no call at all with no budget', async (t) => {
    const ec2 = await emulatorForTest(t);
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeB });
    await assert.rejects(b.port.moveInCloud({ term: 2, budgetMs: 0 }), (err) => isPgvipError(err, 'PGVIP_VIP_TIMEOUT'));
    assert.deepEqual(ec2.requests(), []);
  });

  it('does not retry a 4xx: an unknown ENI fails at once with PGVIP_VIP_NOT_FOUND', async (t) => {
    const ec2 = await emulatorForTest(t);
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: { eniId: 'eni-0fff' } });
    await assert.rejects(b.port.moveInCloud({ term: 2, budgetMs: 2_000 }), (err) => isPgvipError(err, 'PGVIP_VIP_NOT_FOUND') && /eni-0fff/.test(err.detail));
    assert.deepEqual(outcomes(ec2.requests()), ['InvalidNetworkInterfaceID.NotFound']);
  });

  it('does not retry an invalid request: a VIP outside the subnet fails with PGVIP_VIP_EC2_FAILED', async (t) => {
    const ec2 = await emulatorForTest(t);
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip({ address: '198.18.9.9' }), self: nodeB });
    await assert.rejects(b.port.moveInCloud({ term: 2, budgetMs: 2_000 }), (err) => isPgvipError(err, 'PGVIP_VIP_EC2_FAILED') && /InvalidParameterValue/.test(err.detail));
    assert.equal(ec2.requests().length, 1);
  });
});

describe('EC2 faults on verify', suiteTimeout, () => {
  it('retries a throttled or failing describe within the verify budget', async (t) => {
    const ec2 = await emulatorForTest(
      t,
      faulty({ action: 'DescribeNetworkInterfaces', kind: 'throttle', count: 1 }, { action: 'DescribeNetworkInterfaces', kind: 'internal-error', count: 1 }),
    );
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeB });
    assert.equal(await b.port.verify(), 'elsewhere');
    assert.deepEqual(outcomes(ec2.requests()), ['RequestLimitExceeded', 'InternalError', 'ok']);
  });

  it('throws PGVIP_VIP_TIMEOUT when EC2 never answers within the verify budget (an unknown is not "elsewhere")', async (t) => {
    const ec2 = await emulatorForTest(t, faulty({ action: 'DescribeNetworkInterfaces', kind: 'hang' }));
    const b = emulatedPort(t, ec2, {
      vip: secondaryIpVip(),
      self: nodeB,
      timeouts: { ec2AttemptMs: 150, verifyBudgetMs: 400 },
    });
    await assert.rejects(b.port.verify(), (err) => isPgvipError(err, 'PGVIP_VIP_TIMEOUT'));
  });
});
