// Goal: the fake's test controls behave as documented — manual remap, injected faults (including a
// move that lands although its call fails), someone else taking the VIP, and the call log.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeVipCloud, FakeVipPort } from '@pgvip/agent';
import { isPgvipError } from '@pgvip/shared';

function pair(options: { manualRemap?: boolean } = {}) {
  const cloud = new FakeVipCloud({ holder: 'db-a', ...options });
  return { cloud, a: new FakeVipPort(cloud, 'db-a', { onInterface: true }), b: new FakeVipPort(cloud, 'db-b') };
}

describe('FakeVipPort test controls', () => {
  it('with manualRemap, verify says elsewhere until the test completes the remap', async () => {
    const { cloud, a, b } = pair({ manualRemap: true });
    await b.moveInCloud({ term: 2, budgetMs: 1_000 });
    await b.addLocal();
    assert.equal(cloud.assignedTo, 'db-b');
    assert.equal(cloud.routedTo, 'db-a');
    assert.equal(await b.verify(), 'elsewhere');
    assert.equal(await a.verify(), 'here', 'packets still reach db-a');
    cloud.completeRemap();
    assert.equal(await b.verify(), 'here');
    assert.equal(await a.verify(), 'elsewhere');
  });

  it('injects a fault into the next call of one operation on one node, with the default code', async () => {
    const { cloud, a, b } = pair();
    cloud.injectFault({ operation: 'verify', node: 'db-b' });
    assert.equal(await a.verify(), 'here', 'db-a is not affected');
    await assert.rejects(b.verify(), (err) => isPgvipError(err, 'PGVIP_VIP_EC2_FAILED'));
    assert.equal(await b.verify(), 'elsewhere', 'only one call failed');
    cloud.injectFault({ operation: 'add-local', count: 2 });
    await assert.rejects(b.addLocal(), (err) => isPgvipError(err, 'PGVIP_VIP_OS_ADDRESS'));
    await assert.rejects(b.addLocal(), (err) => isPgvipError(err, 'PGVIP_VIP_OS_ADDRESS'));
    await b.addLocal();
    assert.equal(b.onInterface, true);
  });

  it('models a lost answer: the move fails for the caller but lands in EC2, and a retry succeeds', async () => {
    const { cloud, b } = pair();
    cloud.injectFault({ operation: 'move', applied: true, code: 'PGVIP_VIP_TIMEOUT' });
    await assert.rejects(b.moveInCloud({ term: 3, budgetMs: 1_000 }), (err) => isPgvipError(err, 'PGVIP_VIP_TIMEOUT'));
    assert.equal(cloud.assignedTo, 'db-b');
    await b.moveInCloud({ term: 3, budgetMs: 1_000 });
    assert.deepEqual(
      cloud.calls.map((c) => [c.node, c.operation, c.term, c.outcome]),
      [
        ['db-b', 'move', 3, 'PGVIP_VIP_TIMEOUT'],
        ['db-b', 'move', 3, 'ok'],
      ],
    );
  });

  it('lets someone else take the VIP (an operator, a stale node)', async () => {
    const { cloud, a, b } = pair();
    await b.moveInCloud({ term: 2, budgetMs: 1_000 });
    cloud.assignTo('db-a');
    assert.equal(await b.verify(), 'elsewhere');
    assert.equal(await a.verify(), 'here');
    cloud.assignTo(undefined);
    assert.equal(await a.verify(), 'elsewhere');
  });

  it('returns distinct request ids', async () => {
    const { b } = pair();
    const first = await b.moveInCloud({ term: 2, budgetMs: 1_000 });
    const second = await b.moveInCloud({ term: 2, budgetMs: 1_000 });
    assert.notDeepEqual(first.requestIds, second.requestIds);
  });
});
