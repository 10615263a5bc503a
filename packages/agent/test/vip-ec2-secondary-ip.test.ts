// Goal: in secondary-ip mode the real port moves the VIP between the two nodes' ENIs with the real
// SDK, and verify() reports here / cloud-only / elsewhere truthfully, through async remaps and
// stale describes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { holderOfAddress, startImds } from '../../../test/ec2-emulator/index.js';
import { baseConfig, dbA, dbB, emulatorForTest, eventually, suiteTimeout, vip } from '../../../test/ec2-emulator/fixtures.js';
import { emulatedPort, imdsForTest, MemoryIp, secondaryIpVip } from './vip-helpers.js';

const nodeA = { eniId: dbA.eni, instanceId: dbA.instanceId };
const nodeB = { eniId: dbB.eni, instanceId: dbB.instanceId };

describe('secondary-ip mode against the EC2 emulator', suiteTimeout, () => {
  it('moves the VIP from db-a to db-b, then verify says cloud-only, and here once the OS has it', async (t) => {
    const ec2 = await emulatorForTest(t);
    const a = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeA, ip: new MemoryIp() });
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeB });
    await a.port.addLocal();
    assert.equal(await a.port.verify(), 'here', 'db-a starts with the VIP');
    assert.equal(await b.port.verify(), 'elsewhere');

    const { requestIds } = await b.port.moveInCloud({ term: 2, budgetMs: 2_000 });
    const assigns = ec2.requests({ action: 'AssignPrivateIpAddresses' });
    assert.deepEqual(requestIds, [assigns[0]!.requestId], 'the port returns the AWS request id');
    assert.deepEqual(assigns[0]!.params, { Action: 'AssignPrivateIpAddresses', Version: '2016-11-15', NetworkInterfaceId: dbB.eni, 'PrivateIpAddress.1': vip, AllowReassignment: 'true' });
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbB.eni, 'the address left db-a with AllowReassignment');

    assert.equal(await b.port.verify(), 'cloud-only');
    await b.port.addLocal();
    assert.deepEqual(b.ip.addresses(), [`${vip}/24`]);
    assert.equal(await b.port.verify(), 'here');
    assert.equal(await a.port.verify(), 'elsewhere', 'db-a still has it on its interface, but EC2 routes it to db-b');
    await a.port.dropLocal();
    assert.deepEqual(a.ip.addresses(), []);
  });

  it('treats a move to the node that already holds the VIP as done', async (t) => {
    const ec2 = await emulatorForTest(t);
    const a = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeA });
    const first = await a.port.moveInCloud({ term: 1, budgetMs: 2_000 });
    const second = await a.port.moveInCloud({ term: 1, budgetMs: 2_000 });
    assert.equal(first.requestIds.length, 1);
    assert.equal(second.requestIds.length, 1);
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbA.eni);
    assert.deepEqual(ec2.requests().map((r) => r.outcome), ['ok', 'ok']);
  });

  it('moves the VIP back and forth: each move takes it from the other ENI', async (t) => {
    const ec2 = await emulatorForTest(t);
    const a = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeA });
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeB });
    for (const [term, node, eni] of [[2, b, dbB.eni], [3, a, dbA.eni], [4, b, dbB.eni]] as const) {
      await node.port.moveInCloud({ term, budgetMs: 2_000 });
      const holders = ec2.state.control.networkInterfaces
        .filter((e) => e.secondaryPrivateIpAddresses.includes(vip))
        .map((e) => e.id);
      assert.deepEqual(holders, [eni], `term ${term}: exactly one ENI holds the VIP`);
    }
  });

  it('says elsewhere while EC2 remaps asynchronously, until IMDS lists the VIP on this ENI', async (t) => {
    const ec2 = await emulatorForTest(
      t,
      baseConfig({ timing: { remapDelayMs: 400, describeStaleMs: 0, imdsLagMs: 0 } }),
    );
    const imds = await imdsForTest(t, ec2, dbB.instanceId);
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip({ discovery: 'imds', region: undefined, prefixLength: undefined }), imds });
    await b.port.addLocal();
    await b.port.moveInCloud({ term: 2, budgetMs: 2_000 });
    const movedAt = performance.now();
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbB.eni, 'the API already shows the new holder');
    assert.equal(await b.port.verify(), 'elsewhere', 'but the data plane has not remapped yet');
    assert.ok(b.logs.some((l) => /remap in progress/.test(l.msg)), 'the log says why');
    await eventually(async () => ((await b.port.verify()) === 'here' ? true : undefined), 3_000, 'verify to say here');
    assert.ok(performance.now() - movedAt >= 350, 'not before the remap landed');
    assert.equal(holderOfAddress(ec2.truth(), vip)?.id, dbB.eni);
  });

  it('says elsewhere while DescribeNetworkInterfaces still serves the state from before the move', async (t) => {
    const ec2 = await emulatorForTest(
      t,
      baseConfig({ timing: { remapDelayMs: 0, describeStaleMs: 400, imdsLagMs: 0 } }),
    );
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeB });
    await b.port.moveInCloud({ term: 2, budgetMs: 2_000 });
    assert.equal(await b.port.verify(), 'elsewhere', 'the stale describe still names db-a');
    assert.ok(b.logs.some((l) => l.msg.includes(`EC2 assigns ${vip} to ${dbA.eni}`)));
    await eventually(async () => ((await b.port.verify()) === 'cloud-only' ? true : undefined), 3_000, 'the describe to catch up');
  });

  it('relies on the EC2 API alone when IMDS stops answering after discovery', async (t) => {
    const ec2 = await emulatorForTest(t);
    const imds = await startImds({ instanceId: dbB.instanceId, source: ec2 });
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip({ discovery: 'imds', region: undefined, prefixLength: undefined }), imds });
    assert.equal((await b.port.discover()).mac, dbB.mac);
    await imds.close();
    await b.port.moveInCloud({ term: 2, budgetMs: 2_000 });
    assert.equal(await b.port.verify(), 'cloud-only');
    assert.ok(b.logs.some((l) => l.level === 40 && /IMDS could not confirm/.test(l.msg)), 'a warning says IMDS was not asked');
  });

  it('logs every EC2 call with component vip, the action, attempt and AWS request id, and the term of the move', async (t) => {
    const ec2 = await emulatorForTest(t);
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeB });
    await b.port.moveInCloud({ term: 7, budgetMs: 2_000 });
    await b.port.verify();
    const [assign, describeCall] = [ec2.requests({ action: 'AssignPrivateIpAddresses' })[0]!, ec2.requests({ action: 'DescribeNetworkInterfaces' })[0]!];
    const callLines = b.logs.filter((l) => typeof l.action === 'string');
    assert.deepEqual(
      callLines.map((l) => [l.component, l.action, l.attempt, l.requestId]),
      [
        ['vip', 'AssignPrivateIpAddresses', 1, assign.requestId],
        ['vip', 'DescribeNetworkInterfaces', 1, describeCall.requestId],
      ],
    );
    assert.equal(callLines[0]!.term, 7);
    const moved = b.logs.find((l) => l.msg.startsWith(`VIP ${vip} pointed at ${dbB.eni}`));
    assert.deepEqual(moved?.requestIds, [assign.requestId]);
    assert.equal(moved?.term, 7);
  });
});
