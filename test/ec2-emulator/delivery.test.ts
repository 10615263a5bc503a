// Goal: the emulator's data plane says where a packet for the VIP goes from each AZ's subnet
// (deliveryOf), so tests of N nodes can check what clients see, not only what the API says: the
// three-AZ layout delivers from every subnet to the ENI its table names; a forgotten AZ route table,
// an ENI with source/destination check on, and a detached ENI each drop or misdeliver, named.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ReplaceRouteCommand } from '@aws-sdk/client-ec2';
import { deliveryOf, startEc2EmulatorFromFile, type Delivery, type Ec2Snapshot } from './index.js';
import { ec2Client, emulatorForTest, overlayVip, suiteTimeout, threeAz, threeAzConfig, threeNodeSubnetConfig, vip } from './fixtures.js';

const to = (d: Delivery) => ('to' in d ? d.to.id : `dropped: ${d.dropped}`);
const fromEveryAz = (s: Ec2Snapshot) => threeAz.map((n) => to(deliveryOf(s, overlayVip, n.subnetId)));

describe('the data plane: where a packet for the VIP goes (deliveryOf)', suiteTimeout, () => {
  it('three AZs: every subnet reaches the ENI its route table names, after each ReplaceRoute', async (t) => {
    const ec2 = await emulatorForTest(t, threeAzConfig());
    assert.deepEqual(fromEveryAz(ec2.truth()), Array(3).fill(threeAz[0].eni));
    const client = ec2Client(ec2.url);
    for (const n of threeAz) {
      await client.send(new ReplaceRouteCommand({ RouteTableId: n.routeTableId, DestinationCidrBlock: `${overlayVip}/32`, NetworkInterfaceId: threeAz[2].eni }));
    }
    assert.deepEqual(fromEveryAz(ec2.truth()), Array(3).fill(threeAz[2].eni));
    const via = deliveryOf(ec2.truth(), overlayVip, threeAz[1].subnetId);
    assert.ok('to' in via && via.via === `${overlayVip}/32 in ${threeAz[1].routeTableId}`, JSON.stringify(via));
  });

  it("an AZ's route table left out of a move keeps sending that AZ's clients to the old primary", async (t) => {
    const ec2 = await emulatorForTest(t, threeAzConfig());
    const client = ec2Client(ec2.url);
    for (const n of threeAz.slice(0, 2)) {
      await client.send(new ReplaceRouteCommand({ RouteTableId: n.routeTableId, DestinationCidrBlock: `${overlayVip}/32`, NetworkInterfaceId: threeAz[1].eni }));
    }
    assert.deepEqual(fromEveryAz(ec2.truth()), [threeAz[1].eni, threeAz[1].eni, threeAz[0].eni]);
  });

  it('drops the VIP at an ENI whose source/destination check is on, and says so', async (t) => {
    const config = threeAzConfig();
    const enis = config.networkInterfaces!.map((e) => (e.id === threeAz[0].eni ? { ...e, sourceDestCheck: true } : e));
    const ec2 = await emulatorForTest(t, { ...config, networkInterfaces: enis });
    const d = deliveryOf(ec2.truth(), overlayVip, threeAz[1].subnetId);
    assert.ok('dropped' in d);
    assert.match(d.dropped, new RegExp(`${threeAz[0].eni} has source/destination check on, so it drops ${overlayVip}`));
    // Its own address still reaches it: the check is about addresses the ENI does not hold.
    assert.equal(to(deliveryOf(ec2.truth(), threeAz[0].primaryIp, threeAz[1].subnetId)), threeAz[0].eni);
  });

  it('a subnet without its own table uses the main one; without a VIP route there, nothing reaches it', async (t) => {
    const config = threeAzConfig();
    const tables = config.routeTables!.map((rt) => (rt.id === threeAz[2].routeTableId ? { ...rt, subnetIds: [] } : rt));
    const ec2 = await emulatorForTest(t, { ...config, routeTables: tables });
    assert.match(to(deliveryOf(ec2.truth(), overlayVip, threeAz[2].subnetId)), /^dropped: no route to 198\.19\.0\.10 in rtb-0d4d0d4d$/);
  });

  it('secondary-ip among three ENIs of one subnet: the local route reaches whichever ENI holds the VIP', async (t) => {
    const ec2 = await emulatorForTest(t, threeNodeSubnetConfig());
    assert.equal(to(deliveryOf(ec2.truth(), vip, 'subnet-0b2')), 'eni-0aaa');
    const moved = { ...ec2.truth(), networkInterfaces: ec2.truth().networkInterfaces.map((e) => ({ ...e, secondaryPrivateIpAddresses: e.id === 'eni-0ccc' ? [vip] : [] })) };
    assert.equal(to(deliveryOf(moved, vip, 'subnet-0a1')), 'eni-0ccc');
    const detached = { ...ec2.truth(), networkInterfaces: ec2.truth().networkInterfaces.map((e) => (e.id === 'eni-0aaa' ? { ...e, instanceId: undefined } : e)) };
    assert.match(to(deliveryOf(detached, vip, 'subnet-0a1')), /nobody in vpc-0a1 holds/);
  });

  it('the admin API answers the same per subnet, on the example three-AZ config the standalone emulator runs', async (t) => {
    const ec2 = await startEc2EmulatorFromFile(path.join(import.meta.dirname, 'examples/three-az.yaml'), { port: 0 });
    t.after(() => ec2.close());
    const subnets = threeAz.map((n) => n.subnetId);
    const ask = async (query: string) => {
      const res = await fetch(`${ec2.url}/__admin/delivery?${query}`, { signal: AbortSignal.timeout(5_000) });
      type Delivered = { from: string; eniId?: string; via?: string; dropped?: string };
      type Answer = { deliveries?: Delivered[]; error?: string };
      return { status: res.status, body: (await res.json()) as Answer };
    };
    const query = `address=${overlayVip}&${subnets.map((id) => `from=${id}`).join('&')}`;
    const first = await ask(query);
    assert.equal(first.status, 200);
    assert.deepEqual(first.body.deliveries!.map((d) => [d.from, d.eniId, d.via]), threeAz.map((n) => [n.subnetId, threeAz[0].eni, `${overlayVip}/32 in ${n.routeTableId}`]));
    const client = ec2Client(ec2.url);
    for (const n of threeAz.slice(0, 2)) {
      await client.send(new ReplaceRouteCommand({ RouteTableId: n.routeTableId, DestinationCidrBlock: `${overlayVip}/32`, NetworkInterfaceId: threeAz[2].eni }));
    }
    const moved = await ask(query);
    assert.deepEqual(moved.body.deliveries!.map((d) => d.eniId), [threeAz[2].eni, threeAz[2].eni, threeAz[0].eni], 'one table left behind');
    assert.equal((await ask(`address=${overlayVip}&from=subnet-0ff`)).body.deliveries![0]!.dropped, 'no subnet subnet-0ff');
    const bad = await ask(`address=${overlayVip}`);
    assert.equal(bad.status, 400);
    assert.match(bad.body.error!, /one or more from=<subnet id>/);
  });
});
