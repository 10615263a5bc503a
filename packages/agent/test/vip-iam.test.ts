// Goal: deploy/iam's policies are enough for the port in each mode, and a policy missing one action
// fails with PGVIP_VIP_UNAUTHORIZED naming exactly that IAM action, without retries and without
// logging credentials.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isPgvipError } from '@pgvip/shared';
import type { IamPolicyInput } from '../../../test/ec2-emulator/index.js';
import { accountId, baseConfig, dbB, emulatorForTest, overlayVip, region, suiteTimeout } from '../../../test/ec2-emulator/fixtures.js';
import { emulatedPort, routeTableVip, secondaryIpVip, testSecret } from './vip-helpers.js';

const nodeB = { eniId: dbB.eni, instanceId: dbB.instanceId };

/** A policy from deploy/iam with its placeholders filled in for the emulator's account. */
function deployPolicy(file: string, routeTableId = ''): IamPolicyInput {
  const text = readFileSync(fileURLToPath(new URL(`../../../deploy/iam/${file}`, import.meta.url)), 'utf8')
    .replaceAll('<region>', region)
    .replaceAll('<account>', accountId)
    .replaceAll('<cluster>', 'main')
    .replaceAll('<route-table-id>', routeTableId);
  const policy = JSON.parse(text) as IamPolicyInput;
  assert.doesNotMatch(JSON.stringify(policy), /<[a-z-]+>/, `${file}: every placeholder was filled in`);
  return policy;
}

/** The same policy without one action (the mistake an operator makes when writing it by hand). */
function without(policy: IamPolicyInput, action: string): IamPolicyInput {
  const statements = Array.isArray(policy.Statement) ? policy.Statement : [policy.Statement];
  return {
    ...policy,
    Statement: statements
      .map((s) => ({ ...s, Action: [s.Action ?? []].flat().filter((a) => a !== action) }))
      .filter((s) => s.Action.length > 0),
  };
}

const keys = { full: 'AKIAVIPFULLPOLICY1', partial: 'AKIAVIPPARTIALPOL1' } as const;

async function emulatorWithPolicies(
  t: Parameters<typeof emulatorForTest>[0],
  full: IamPolicyInput,
  partial: IamPolicyInput,
) {
  return emulatorForTest(
    t,
    baseConfig({ iam: { accessKeys: { [keys.full]: { secretAccessKey: testSecret, user: 'db-b-agent', policy: full }, [keys.partial]: { secretAccessKey: testSecret, user: 'db-b-agent-partial', policy: partial } } } }),
  );
}

describe('IAM: secondary-ip mode', suiteTimeout, () => {
  const policy = deployPolicy('agent-secondary-ip.json');

  it('moves and verifies with deploy/iam/agent-secondary-ip.json', async (t) => {
    const ec2 = await emulatorWithPolicies(t, policy, policy);
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeB, accessKeyId: keys.full });
    await b.port.moveInCloud({ term: 2, budgetMs: 2_000 });
    assert.equal(await b.port.verify(), 'cloud-only');
    assert.ok(ec2.requests().every((r) => r.outcome === 'ok'));
  });

  it('fails with PGVIP_VIP_UNAUTHORIZED naming ec2:AssignPrivateIpAddresses when the policy lacks it, after one attempt', async (t) => {
    const ec2 = await emulatorWithPolicies(t, policy, without(policy, 'ec2:AssignPrivateIpAddresses'));
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeB, accessKeyId: keys.partial });
    await assert.rejects(b.port.moveInCloud({ term: 2, budgetMs: 2_000 }), (err) => {
      assert.ok(isPgvipError(err, 'PGVIP_VIP_UNAUTHORIZED'), String(err));
      assert.match(err.detail, /must allow ec2:AssignPrivateIpAddresses/);
      assert.doesNotMatch(err.detail, /Encoded authorization failure message/, 'the encoded blob is left out');
      return true;
    });
    assert.deepEqual(ec2.requests().map((r) => r.code), ['UnauthorizedOperation']);
    const logged = JSON.stringify(b.logs);
    assert.ok(!logged.includes(testSecret) && !logged.includes(keys.partial), 'neither the secret nor the access key id is logged');
  });

  it('fails verify with PGVIP_VIP_UNAUTHORIZED naming ec2:DescribeNetworkInterfaces when the policy lacks it', async (t) => {
    const ec2 = await emulatorWithPolicies(t, policy, without(policy, 'ec2:DescribeNetworkInterfaces'));
    const b = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: nodeB, accessKeyId: keys.partial });
    await assert.rejects(b.port.verify(), (err) => isPgvipError(err, 'PGVIP_VIP_UNAUTHORIZED') && /ec2:DescribeNetworkInterfaces/.test(err.detail));
  });

  it('refuses to move the VIP onto an ENI of another cluster (the tag condition), naming the action', async (t) => {
    const ec2 = await emulatorWithPolicies(t, policy, policy);
    const intruder = emulatedPort(t, ec2, { vip: secondaryIpVip(), self: { eniId: 'eni-0ddd' }, accessKeyId: keys.full });
    await assert.rejects(intruder.port.moveInCloud({ term: 2, budgetMs: 2_000 }), (err) => isPgvipError(err, 'PGVIP_VIP_UNAUTHORIZED') && /ec2:AssignPrivateIpAddresses/.test(err.detail));
  });
});

describe('IAM: route-table mode', suiteTimeout, () => {
  // rtb-0b2 lacks the VIP's route, so the move needs CreateRoute as well as ReplaceRoute.
  const policy = deployPolicy('agent-route-table.json', 'rtb-0b2');

  it('creates, moves and verifies with deploy/iam/agent-route-table.json', async (t) => {
    const ec2 = await emulatorWithPolicies(t, policy, policy);
    const b = emulatedPort(t, ec2, { vip: routeTableVip(overlayVip, ['rtb-0b2']), self: nodeB, accessKeyId: keys.full });
    await b.port.moveInCloud({ term: 2, budgetMs: 2_000 });
    assert.equal(await b.port.verify(), 'cloud-only');
  });

  it('fails with PGVIP_VIP_UNAUTHORIZED naming ec2:CreateRoute when the policy lacks it', async (t) => {
    const ec2 = await emulatorWithPolicies(t, policy, without(policy, 'ec2:CreateRoute'));
    const b = emulatedPort(t, ec2, { vip: routeTableVip(overlayVip, ['rtb-0b2']), self: nodeB, accessKeyId: keys.partial });
    await assert.rejects(b.port.moveInCloud({ term: 2, budgetMs: 2_000 }), (err) => isPgvipError(err, 'PGVIP_VIP_UNAUTHORIZED') && /must allow ec2:CreateRoute/.test(err.detail));
  });

  it('fails with PGVIP_VIP_UNAUTHORIZED for a table the policy does not list', async (t) => {
    const ec2 = await emulatorWithPolicies(t, policy, policy);
    const b = emulatedPort(t, ec2, { vip: routeTableVip(overlayVip, ['rtb-0a1']), self: nodeB, accessKeyId: keys.full });
    await assert.rejects(b.port.moveInCloud({ term: 2, budgetMs: 2_000 }), (err) => isPgvipError(err, 'PGVIP_VIP_UNAUTHORIZED') && /ec2:ReplaceRoute/.test(err.detail));
  });
});
