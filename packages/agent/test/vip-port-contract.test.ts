// Goal: FakeVipPort keeps the same VipPort contract as the real port against the EC2 emulator, so
// agent tests built on the fake mean something.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { FakeVipCloud, FakeVipPort, type VipPort } from '@pgvip/agent';
import { isPgvipError } from '@pgvip/shared';
import { dbA, dbB, emulatorForTest, suiteTimeout } from '../../../test/ec2-emulator/fixtures.js';
import { emulatedPort, secondaryIpVip } from './vip-helpers.js';

/** Two nodes' ports; EC2 starts with the VIP on a, and neither OS interface has it. */
type PairFactory = (t: TestContext) => Promise<{ a: VipPort; b: VipPort }>;

function vipPortContract(name: string, makePair: PairFactory): void {
  describe(`VipPort contract: ${name}`, suiteTimeout, () => {
    it('reports the starting placement: cloud-only on the holder, elsewhere on the other', async (t) => {
      const { a, b } = await makePair(t);
      assert.equal(await a.verify(), 'cloud-only');
      assert.equal(await b.verify(), 'elsewhere');
    });

    it('moves the VIP to the caller, idempotently, and the other node sees it go', async (t) => {
      const { a, b } = await makePair(t);
      const first = await b.moveInCloud({ term: 2, budgetMs: 2_000 });
      assert.ok(first.requestIds.length >= 1);
      await b.moveInCloud({ term: 2, budgetMs: 2_000 });
      assert.equal(await b.verify(), 'cloud-only');
      assert.equal(await a.verify(), 'elsewhere');
    });

    it('adds and drops the local address idempotently; here needs both halves', async (t) => {
      const { a, b } = await makePair(t);
      await b.dropLocal(); // harmless when absent
      await b.addLocal();
      await b.addLocal();
      assert.equal(await b.verify(), 'elsewhere', 'on the interface but not routed here');
      await b.moveInCloud({ term: 2, budgetMs: 2_000 });
      assert.equal(await b.verify(), 'here');
      await b.dropLocal();
      await b.dropLocal();
      assert.equal(await b.verify(), 'cloud-only');
      assert.equal(await a.verify(), 'elsewhere');
    });

    it('fails a move with no budget left with PGVIP_VIP_TIMEOUT and leaves the VIP where it was', async (t) => {
      const { a, b } = await makePair(t);
      await assert.rejects(b.moveInCloud({ term: 2, budgetMs: 0 }), (err) => isPgvipError(err, 'PGVIP_VIP_TIMEOUT'));
      assert.equal(await a.verify(), 'cloud-only');
      assert.equal(await b.verify(), 'elsewhere');
    });
  });
}

vipPortContract('FakeVipPort', async () => {
  const cloud = new FakeVipCloud({ holder: 'db-a' });
  return { a: new FakeVipPort(cloud, 'db-a'), b: new FakeVipPort(cloud, 'db-b') };
});

vipPortContract('Ec2VipPort against the EC2 emulator', async (t) => {
  const ec2 = await emulatorForTest(t);
  return {
    a: emulatedPort(t, ec2, { vip: secondaryIpVip(), self: { eniId: dbA.eni } }).port,
    b: emulatedPort(t, ec2, { vip: secondaryIpVip(), self: { eniId: dbB.eni } }).port,
  };
});
