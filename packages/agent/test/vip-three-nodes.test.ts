// Goal: the real VIP port with three database nodes against the EC2 emulator (issue 17, docs/vip.md
// "Three or more nodes"): in route-table mode across three AZs a move points the VIP's /32 in every
// listed table at the mover, each client subnet's packets then reach it (the emulator's data plane),
// and the other two nodes see `elsewhere` and drop the VIP locally; under the IAM policy the CDK
// deploys for those three tables the move succeeds, and a table outside it is refused by name. In
// secondary-ip mode with three ENIs in one subnet exactly one ENI holds the VIP after each move.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { isPgvipError } from '@pgvip/shared';
import { renderAgentPolicy } from '../../../deploy/cdk/lib/iam-policies.js';
import { deliveryOf, holderOfAddress, type Ec2Emulator, type IamPolicyInput } from '../../../test/ec2-emulator/index.js';
import {
  accountId, dbA, dbB, dbC, emulatorForTest, overlayVip, region, suiteTimeout,
  threeAz, threeAzConfig, threeAzMainTable, threeNodeSubnetConfig, vip,
} from '../../../test/ec2-emulator/fixtures.js';
import { emulatedPort, routeTableVip, secondaryIpVip, testSecret, type EmulatedPort } from './vip-helpers.js';

const tables: string[] = threeAz.map((n) => n.routeTableId);
const destination = `${overlayVip}/32`;

/** Where each table's VIP route points in the control plane. */
function vipRoutes(ec2: Ec2Emulator): Record<string, string | undefined> {
  const ours = ec2.state.control.routeTables.filter((t) => tables.includes(t.id));
  const vipRoute = (t: (typeof ours)[number]) => t.routes.find((r) => r.destinationCidrBlock === destination);
  return Object.fromEntries(ours.map((t) => [t.id, vipRoute(t)?.networkInterfaceId]));
}

/** The ENI a client in each AZ reaches when it sends to the VIP (the data plane). */
function reachedFromEachAz(ec2: Ec2Emulator): string[] {
  return threeAz.map((n) => {
    const d = deliveryOf(ec2.truth(), overlayVip, n.subnetId);
    return 'to' in d ? d.to.id : `dropped: ${d.dropped}`;
  });
}

function threePorts(t: TestContext, ec2: Ec2Emulator, routeTableIds = tables, accessKeyId?: string): EmulatedPort[] {
  return threeAz.map((n) => emulatedPort(t, ec2, {
    vip: routeTableVip(overlayVip, routeTableIds),
    self: { eniId: n.eni, instanceId: n.instanceId },
    ...(accessKeyId === undefined ? {} : { accessKeyId }),
  }));
}

describe('three nodes, route-table mode across three AZs', suiteTimeout, () => {
  it('each move points every AZ\'s table at the mover; clients in every AZ reach it; the others see elsewhere', async (t) => {
    const ec2 = await emulatorForTest(t, threeAzConfig());
    const [a, b, c] = threePorts(t, ec2) as [EmulatedPort, EmulatedPort, EmulatedPort];
    await a.port.addLocal();
    assert.deepEqual(await Promise.all([a, b, c].map((n) => n.port.verify())), ['here', 'elsewhere', 'elsewhere']);

    for (const [term, mover, index] of [[2, c, 2], [3, b, 1], [4, a, 0]] as const) {
      const before = ec2.requests({ action: 'ReplaceRoute' }).length;
      const { requestIds } = await mover.port.moveInCloud({ term, budgetMs: 2_000 });
      const replaces = ec2.requests({ action: 'ReplaceRoute' }).slice(before);
      const replaced = replaces.map((r) => r.params.RouteTableId).sort();
      assert.deepEqual(replaced, [...tables].sort(), `term ${term}: one ReplaceRoute per table`);
      assert.equal(requestIds.length, 3);
      const eni = threeAz[index].eni;
      assert.deepEqual(vipRoutes(ec2), Object.fromEntries(tables.map((id) => [id, eni])), `term ${term}`);
      assert.deepEqual(reachedFromEachAz(ec2), [eni, eni, eni], `term ${term}: every AZ's clients reach ${threeAz[index].id}`);
      // A node that is not the primary drops the VIP from its interface (the core's `leaving` →
      // drop-vip-local, docs/vip.md); the port's half of that is dropLocal.
      for (const other of [a, b, c].filter((n) => n !== mover)) {
        await other.port.dropLocal();
        assert.equal(await other.port.verify(), 'elsewhere');
        assert.deepEqual(other.ip.addresses(), []);
      }
      await mover.port.addLocal();
      assert.equal(await mover.port.verify(), 'here');
    }
  });

  it('repairs one AZ\'s missing route with CreateRoute while replacing the other two', async (t) => {
    const config = threeAzConfig();
    const withoutRoute = (rt: (typeof config.routeTables & object)[number]) => ({ ...rt, routes: [] });
    const routeTables = config.routeTables!.map((rt) => (rt.id === threeAz[1].routeTableId ? withoutRoute(rt) : rt));
    const ec2 = await emulatorForTest(t, { ...config, routeTables });
    const [, , c] = threePorts(t, ec2);
    assert.equal(reachedFromEachAz(ec2)[1], 'dropped: no route to 198.19.0.10 in rtb-0b2b0b2b');
    await c!.port.moveInCloud({ term: 2, budgetMs: 2_000 });
    const calls = (id: string) => ec2.requests().filter((r) => r.params.RouteTableId === id).map((r) => `${r.action}:${r.code ?? r.outcome}`);
    assert.deepEqual(tables.map(calls), [['ReplaceRoute:ok'], ['ReplaceRoute:InvalidParameterValue', 'CreateRoute:ok'], ['ReplaceRoute:ok']]);
    assert.deepEqual(reachedFromEachAz(ec2), Array(3).fill(threeAz[2].eni));
  });

  it('says elsewhere, naming the one table that points at another node', async (t) => {
    const ec2 = await emulatorForTest(t, threeAzConfig());
    const [, b, c] = threePorts(t, ec2) as [EmulatedPort, EmulatedPort, EmulatedPort];
    await c.port.moveInCloud({ term: 2, budgetMs: 2_000 });
    // A late or foreign writer repoints one AZ's table.
    const partial = threePorts(t, ec2, [threeAz[0].routeTableId])[1]!;
    await partial.port.moveInCloud({ term: 3, budgetMs: 2_000 });
    assert.equal(await c.port.verify(), 'elsewhere');
    assert.ok(c.logs.some((l) => l.msg.includes(`${threeAz[0].routeTableId} → ${threeAz[1].eni}`) && !l.msg.includes(`${threeAz[2].routeTableId} →`)));
    assert.equal(await b.port.verify(), 'elsewhere', 'b holds one table of three: not routed here');
  });
});

describe('three nodes, route-table mode under the IAM policy the CDK deploys', suiteTimeout, () => {
  const rendered = renderAgentPolicy('route-table', { region, account: accountId, cluster: 'main', routeTableIds: tables });
  const policy = JSON.parse(JSON.stringify(rendered)) as IamPolicyInput;
  const key = 'AKIAVIPTHREEAZ0001';
  const config = threeAzConfig({ iam: { accessKeys: { [key]: { secretAccessKey: testSecret, user: 'payments-agent', policy } } } });

  it('lets each of the three nodes move the VIP in all three tables', async (t) => {
    const ec2 = await emulatorForTest(t, config);
    for (const [term, node] of threePorts(t, ec2, tables, key).entries()) {
      await node.port.moveInCloud({ term: term + 2, budgetMs: 2_000 });
      assert.equal(await node.port.verify(), 'cloud-only');
    }
    assert.ok(ec2.requests().every((r) => r.outcome === 'ok'), JSON.stringify(ec2.requests().filter((r) => r.outcome !== 'ok')));
  });

  it('refuses a table outside the policy with PGVIP_VIP_UNAUTHORIZED naming it, and still points the listed ones', async (t) => {
    const ec2 = await emulatorForTest(t, config);
    const b = threePorts(t, ec2, [...tables, threeAzMainTable], key)[1]!;
    await assert.rejects(b.port.moveInCloud({ term: 2, budgetMs: 2_000 }), (err) => {
      assert.ok(isPgvipError(err, 'PGVIP_VIP_UNAUTHORIZED'), String(err));
      assert.match(err.detail, new RegExp(`must allow ec2:(ReplaceRoute|CreateRoute).*${threeAzMainTable}`));
      return true;
    });
    assert.deepEqual(vipRoutes(ec2), Object.fromEntries(tables.map((id) => [id, threeAz[1].eni])));
  });
});

describe('three nodes, secondary-ip mode in one subnet', suiteTimeout, () => {
  it('each move leaves exactly one ENI holding the VIP; verify and the data plane agree', async (t) => {
    const ec2 = await emulatorForTest(t, threeNodeSubnetConfig());
    const nodes = [dbA, dbB, dbC].map((n) => ({
      eni: n.eni,
      p: emulatedPort(t, ec2, { vip: secondaryIpVip(), self: { eniId: n.eni, instanceId: n.instanceId } }),
    }));
    const [a, b, c] = nodes as [typeof nodes[0], typeof nodes[0], typeof nodes[0]];
    assert.deepEqual(await Promise.all(nodes.map((n) => n.p.port.verify())), ['cloud-only', 'elsewhere', 'elsewhere']);
    for (const [term, mover] of [[2, c], [3, b], [4, c], [5, a]] as const) {
      await mover.p.port.moveInCloud({ term, budgetMs: 2_000 });
      const holders = ec2.state.control.networkInterfaces
        .filter((e) => e.secondaryPrivateIpAddresses.includes(vip))
        .map((e) => e.id);
      assert.deepEqual(holders, [mover.eni], `term ${term}`);
      assert.equal(holderOfAddress(ec2.truth(), vip)?.id, mover.eni);
      const reached = deliveryOf(ec2.truth(), vip, 'subnet-0b2');
      assert.ok('to' in reached && reached.to.id === mover.eni);
      assert.deepEqual(await Promise.all(nodes.map((n) => n.p.port.verify())), nodes.map((n) => (n === mover ? 'cloud-only' : 'elsewhere')));
    }
  });
});
