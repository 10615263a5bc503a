// Goal: in route-table mode the real port points VIP/32 at its own ENI in every configured table
// (ReplaceRoute, CreateRoute when missing, back to ReplaceRoute on RouteAlreadyExists) and verify()
// checks every table.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReplaceRouteCommand } from '@aws-sdk/client-ec2';
import { isPgvipError } from '@pgvip/shared';
import type { Ec2Emulator } from '../../../test/ec2-emulator/index.js';
import { baseConfig, dbA, dbB, ec2Client, emulatorForTest, overlayVip, suiteTimeout } from '../../../test/ec2-emulator/fixtures.js';
import { emulatedPort, routeTableVip } from './vip-helpers.js';

const destination = `${overlayVip}/32`;
const nodeA = { eniId: dbA.eni, instanceId: dbA.instanceId };
const nodeB = { eniId: dbB.eni, instanceId: dbB.instanceId };

/** Where each table's VIP route points in the control plane (undefined: no route). */
function vipRoutes(ec2: Ec2Emulator): Record<string, string | undefined> {
  return Object.fromEntries(
    ec2.state.control.routeTables.map((t) => [
      t.id,
      t.routes.find((r) => r.destinationCidrBlock === destination)?.networkInterfaceId,
    ]),
  );
}

describe('route-table mode against the EC2 emulator', suiteTimeout, () => {
  it('replaces the existing route, so verify says cloud-only on db-b and elsewhere on db-a', async (t) => {
    const ec2 = await emulatorForTest(t);
    const a = emulatedPort(t, ec2, { vip: routeTableVip(overlayVip, ['rtb-0a1']), self: nodeA });
    const b = emulatedPort(t, ec2, { vip: routeTableVip(overlayVip, ['rtb-0a1']), self: nodeB });
    assert.equal(await a.port.verify(), 'cloud-only', 'db-a starts with the route');
    const { requestIds } = await b.port.moveInCloud({ term: 2, budgetMs: 2_000 });
    const [replace] = ec2.requests({ action: 'ReplaceRoute' });
    assert.deepEqual(requestIds, [replace!.requestId]);
    assert.deepEqual(replace!.params, { Action: 'ReplaceRoute', Version: '2016-11-15', RouteTableId: 'rtb-0a1', DestinationCidrBlock: destination, NetworkInterfaceId: dbB.eni });
    assert.equal(vipRoutes(ec2)['rtb-0a1'], dbB.eni);
    assert.equal(await b.port.verify(), 'cloud-only');
    assert.equal(await a.port.verify(), 'elsewhere');
    await b.port.addLocal();
    assert.deepEqual(b.ip.addresses(), [`${overlayVip}/32`], 'route-table mode configures the VIP as a /32');
    assert.equal(await b.port.verify(), 'here');
  });

  it('creates the route in a table that lacks it, and points every table at once', async (t) => {
    const ec2 = await emulatorForTest(t);
    const b = emulatedPort(t, ec2, { vip: routeTableVip(overlayVip, ['rtb-0a1', 'rtb-0b2']), self: nodeB });
    assert.equal(await b.port.verify(), 'elsewhere');
    const { requestIds } = await b.port.moveInCloud({ term: 2, budgetMs: 2_000 });
    assert.deepEqual(vipRoutes(ec2), { 'rtb-0a1': dbB.eni, 'rtb-0b2': dbB.eni });
    const forTable = (id: string) => ec2.requests().filter((r) => r.params.RouteTableId === id).map((r) => `${r.action}:${r.code ?? r.outcome}`);
    assert.deepEqual(forTable('rtb-0a1'), ['ReplaceRoute:ok']);
    assert.deepEqual(forTable('rtb-0b2'), ['ReplaceRoute:InvalidParameterValue', 'CreateRoute:ok']);
    assert.equal(requestIds.length, 2, 'one successful call per table');
    assert.equal(await b.port.verify(), 'cloud-only');
    const again = await b.port.moveInCloud({ term: 2, budgetMs: 2_000 });
    assert.equal(again.requestIds.length, 2, 'a repeated move replaces both routes, no error');
  });

  it('goes back to ReplaceRoute when its CreateRoute answer was lost and the retry finds RouteAlreadyExists', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({ faults: { rules: [{ action: 'CreateRoute', kind: 'lost-response', count: 1 }] } }));
    const b = emulatedPort(t, ec2, { vip: routeTableVip(overlayVip, ['rtb-0b2']), self: nodeB });
    await b.port.moveInCloud({ term: 2, budgetMs: 2_000 });
    assert.deepEqual(
      ec2.requests().map((r) => `${r.action}:${r.code ?? r.outcome}`),
      ['ReplaceRoute:InvalidParameterValue', 'CreateRoute:lost-response', 'CreateRoute:RouteAlreadyExists', 'ReplaceRoute:ok'],
    );
    assert.equal(vipRoutes(ec2)['rtb-0b2'], dbB.eni);
  });

  it('says elsewhere when any one table points at another ENI, and names that table', async (t) => {
    const ec2 = await emulatorForTest(t);
    const b = emulatedPort(t, ec2, { vip: routeTableVip(overlayVip, ['rtb-0a1', 'rtb-0b2']), self: nodeB });
    await b.port.moveInCloud({ term: 2, budgetMs: 2_000 });
    await ec2Client(ec2.url).send(new ReplaceRouteCommand({ RouteTableId: 'rtb-0b2', DestinationCidrBlock: destination, NetworkInterfaceId: dbA.eni }));
    assert.equal(await b.port.verify(), 'elsewhere');
    assert.ok(b.logs.some((l) => l.msg.includes(`rtb-0b2 → ${dbA.eni}`) && !l.msg.includes('rtb-0a1 →')), 'only the wrong table is named');
  });

  it('fails with PGVIP_VIP_NOT_FOUND for an unknown route table, without retrying, and names it', async (t) => {
    const ec2 = await emulatorForTest(t);
    const b = emulatedPort(t, ec2, { vip: routeTableVip(overlayVip, ['rtb-0a1', 'rtb-0fff']), self: nodeB });
    await assert.rejects(b.port.moveInCloud({ term: 2, budgetMs: 2_000 }), (err) => isPgvipError(err, 'PGVIP_VIP_NOT_FOUND') && /rtb-0fff/.test(err.detail));
    assert.equal(ec2.requests().filter((r) => r.params.RouteTableId === 'rtb-0fff').length, 1);
    assert.equal(vipRoutes(ec2)['rtb-0a1'], dbB.eni, 'the good table was still pointed at db-b');
  });
});
