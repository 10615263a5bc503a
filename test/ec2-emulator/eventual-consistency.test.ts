// Goal: a mutation is acknowledged at once, reaches the truth only after remapDelayMs, and
// describes lag by describeStaleMs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AssignPrivateIpAddressesCommand, DescribeNetworkInterfacesCommand, ReplaceRouteCommand, UnassignPrivateIpAddressesCommand } from '@aws-sdk/client-ec2';
import { holderOfAddress, type TruthChange } from './index.js';
import { baseConfig, dbA, dbB, ec2Client, emulatorForTest, eventually, expectEc2Error, other, overlayVip, sleep, vip, suiteTimeout } from './fixtures.js';

const timing = { remapDelayMs: 400, describeStaleMs: 250, imdsLagMs: 0 };

describe('asynchronous remap and eventual consistency', suiteTimeout, () => {
  it('acknowledges at once, describes stale then converge, and the truth changes after the remap delay', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({ timing }));
    const client = ec2Client(ec2.url);
    const changes: TruthChange[] = [];
    ec2.onTruthChange((change) => changes.push(change));
    const holders = async () =>
      ((await client.send(new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'addresses.private-ip-address', Values: [vip] }] }))).NetworkInterfaces ?? []).map(
        (e) => e.NetworkInterfaceId,
      );

    const started = performance.now();
    await client.send(new AssignPrivateIpAddressesCommand({
      NetworkInterfaceId: dbB.eni,
      PrivateIpAddresses: [vip],
      AllowReassignment: true,
    }));
    assert.ok(performance.now() - started < timing.remapDelayMs, 'the call is acknowledged before the remap');
    assert.deepEqual(await holders(), [dbA.eni], 'a describe right after the change is stale');
    assert.equal(holderOfAddress(ec2.truth(), vip)?.id, dbA.eni, 'the data plane has not moved yet');

    await eventually(async () => ((await holders())[0] === dbB.eni ? true : undefined), 2_000, 'describe to converge');
    const convergedAfterMs = performance.now() - started;
    assert.ok(convergedAfterMs >= timing.describeStaleMs, `describe converged after ${convergedAfterMs} ms`);

    await eventually(() => (changes.length > 0 ? true : undefined), 2_000, 'the truth to change');
    assert.ok(performance.now() - started >= timing.remapDelayMs);
    assert.equal(changes.length, 1);
    assert.equal(changes[0]?.cause, 'AssignPrivateIpAddresses');
    assert.equal(changes[0]?.version, 1);
    assert.equal(holderOfAddress(changes[0]!.previous, vip)?.id, dbA.eni);
    assert.equal(holderOfAddress(changes[0]!.truth, vip)?.id, dbB.eni);
    assert.equal(holderOfAddress(ec2.truth(), vip)?.id, dbB.eni);
  });

  it('validates against the accepted state even while describes are stale', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({ timing }));
    const client = ec2Client(ec2.url);
    await client.send(new AssignPrivateIpAddressesCommand({
      NetworkInterfaceId: dbB.eni,
      PrivateIpAddresses: [vip],
      AllowReassignment: true,
    }));
    assert.equal(holderOfAddress(ec2.state.describeView(), vip)?.id, dbA.eni, 'describes still show db-a');
    // The control plane already knows db-b holds the VIP: db-a no longer has it to give up, db-b does.
    await expectEc2Error(client.send(new UnassignPrivateIpAddressesCommand({ NetworkInterfaceId: dbA.eni, PrivateIpAddresses: [vip] })), 'InvalidParameterValue', 400);
    await client.send(
      new UnassignPrivateIpAddressesCommand({ NetworkInterfaceId: dbB.eni, PrivateIpAddresses: [vip] }),
    );
    assert.equal(holderOfAddress(ec2.state.control, vip), undefined);
  });

  it('lands remaps in acceptance order even when the delay is lowered in between', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({ timing: { ...timing, describeStaleMs: 0 } }));
    const client = ec2Client(ec2.url);
    const holders: Array<string | undefined> = [];
    ec2.onTruthChange(({ truth }) => holders.push(holderOfAddress(truth, vip)?.id));
    await client.send(new AssignPrivateIpAddressesCommand({
      NetworkInterfaceId: dbB.eni,
      PrivateIpAddresses: [vip],
      AllowReassignment: true,
    }));
    ec2.setTiming({ remapDelayMs: 0 });
    await client.send(new AssignPrivateIpAddressesCommand({
      NetworkInterfaceId: dbA.eni,
      PrivateIpAddresses: [vip],
      AllowReassignment: true,
    }));
    assert.equal(ec2.state.pendingRemaps, 2, 'the faster second remap waits behind the first');
    await eventually(() => (holders.length === 2 ? true : undefined), 2_000, 'both remaps');
    assert.deepEqual(holders, [dbB.eni, dbA.eni]);
  });

  it('moves a route in the truth only after the remap delay', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({ timing }));
    const client = ec2Client(ec2.url);
    const target = () => ec2.truth().routeTables.find((r) => r.id === 'rtb-0a1')?.routes.find((r) => r.destinationCidrBlock === `${overlayVip}/32`)?.networkInterfaceId;
    await client.send(new ReplaceRouteCommand({ RouteTableId: 'rtb-0a1', DestinationCidrBlock: `${overlayVip}/32`, NetworkInterfaceId: dbB.eni }));
    assert.equal(target(), dbA.eni);
    await sleep(timing.remapDelayMs + 100);
    assert.equal(target(), dbB.eni);
  });

  it('does not count a no-op as a change', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({ timing }));
    await ec2Client(ec2.url).send(new AssignPrivateIpAddressesCommand({
      NetworkInterfaceId: dbA.eni,
      PrivateIpAddresses: [vip],
      AllowReassignment: true,
    }));
    assert.equal(ec2.state.pendingRemaps, 0);
    assert.equal(holderOfAddress(ec2.state.describeView(), vip)?.id, dbA.eni);
  });

  it('serves truth changes to another process through an admin long-poll', async (t) => {
    const ec2 = await emulatorForTest(t, baseConfig({ timing: { ...timing, remapDelayMs: 200 } }));
    const poll = fetch(`${ec2.url}/__admin/truth?after=0&waitMs=5000`).then((r) => r.json() as Promise<{ version: number; truth: unknown }>);
    const started = performance.now();
    await ec2Client(ec2.url).send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: other.eni, PrivateIpAddresses: ['198.18.1.21'] }));
    const answer = await poll;
    assert.equal(answer.version, 1);
    assert.ok(performance.now() - started >= 150, 'the long-poll answered when the remap landed');
    assert.deepEqual(answer.truth, JSON.parse(JSON.stringify(ec2.truth())));
    const timedOut = (await (await fetch(`${ec2.url}/__admin/truth?after=1&waitMs=50`)).json()) as { version: number };
    assert.equal(timedOut.version, 1);
  });

  it('changes delays at runtime through the admin API', async (t) => {
    const ec2 = await emulatorForTest(t);
    const res = await fetch(`${ec2.url}/__admin/timing`, { method: 'POST', body: JSON.stringify({ remapDelayMs: 1500 }) });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { remapDelayMs: 1500, describeStaleMs: 0, imdsLagMs: 0 });
    const bad = await fetch(`${ec2.url}/__admin/timing`, { method: 'POST', body: JSON.stringify({ remapDelayMs: -1 }) });
    assert.equal(bad.status, 400);
    await ec2Client(ec2.url).send(new AssignPrivateIpAddressesCommand({
      NetworkInterfaceId: dbB.eni,
      PrivateIpAddresses: [vip],
      AllowReassignment: true,
    }));
    assert.equal(ec2.state.pendingRemaps, 1);
  });
});
