// Goal: deploy/iam's agent policies are enough and no more. Loaded into the EC2 emulator's IAM
// enforcement and driven with the real @aws-sdk/client-ec2, each policy lets the agent make every call
// of its VIP mode; removing any single action makes exactly the call that needs it fail with
// UnauthorizedOperation; and the tag and route-table scoping keeps the agent off resources that are not
// its cluster's.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AssignPrivateIpAddressesCommand,
  CreateRouteCommand,
  DescribeNetworkInterfacesCommand,
  DescribeRouteTablesCommand,
  EC2Client,
  ReplaceRouteCommand,
  UnassignPrivateIpAddressesCommand,
} from '@aws-sdk/client-ec2';
import { allowedActions, clusterTagKey, loadPolicyTemplate, renderAgentPolicy, type PolicyDocumentJson, type VipMode } from '../../deploy/cdk/lib/iam-policies.js';
import { decodeAuthorizationFailure, holderOfAddress, startEc2Emulator, type Ec2Emulator, type Ec2EmulatorConfig, type IamPolicyInput } from '../ec2-emulator/index.js';
import { expectEc2Error, testSecretAccessKey } from '../ec2-emulator/fixtures.js';

// Ids shaped like real AWS ids (8 hex digits), since the policy renderer checks them.
const region = 'eu-west-1';
const account = '210987654321';
const cluster = 'orders';
const vip = '198.18.1.100';
const overlayVip = '198.19.0.10';
const dbA = { eni: 'eni-0a0a0a0a', instance: 'i-0a0a0a0a' };
const dbB = { eni: 'eni-0b0b0b0b', instance: 'i-0b0b0b0b' };
/** An ENI of another pgvip cluster, and one without any pgvip tag: the agent must not touch either. */
const otherCluster = { eni: 'eni-0c0c0c0c', instance: 'i-0c0c0c0c' };
const untagged = { eni: 'eni-0d0d0d0d', instance: 'i-0d0d0d0d' };
/** rtb-a holds the VIP route already (ReplaceRoute), rtb-b does not yet (CreateRoute), rtb-c is not the cluster's. */
const rtb = { a: 'rtb-0aaa0aaa', b: 'rtb-0bbb0bbb', c: 'rtb-0ccc0ccc' };

type AccessKeyConfig = NonNullable<NonNullable<Ec2EmulatorConfig['iam']>['accessKeys']>[string];

/** Every key signs with the test secret, which the emulator verifies. */
function emulatorConfig(accessKeys: Record<string, Omit<AccessKeyConfig, 'secretAccessKey'>>): Ec2EmulatorConfig {
  return {
    region,
    accountId: account,
    vpcs: [{ id: 'vpc-0e0e0e0e', cidrBlock: '198.18.0.0/16' }],
    subnets: [{ id: 'subnet-0f0f0f0f', vpcId: 'vpc-0e0e0e0e', cidrBlock: '198.18.1.0/24', availabilityZone: 'eu-west-1a' }],
    networkInterfaces: [
      { id: dbA.eni, instanceId: dbA.instance, subnetId: 'subnet-0f0f0f0f', privateIpAddress: '198.18.1.10', secondaryPrivateIpAddresses: [vip], sourceDestCheck: false, tags: { [clusterTagKey]: cluster } },
      { id: dbB.eni, instanceId: dbB.instance, subnetId: 'subnet-0f0f0f0f', privateIpAddress: '198.18.1.11', sourceDestCheck: false, tags: { [clusterTagKey]: cluster } },
      { id: otherCluster.eni, instanceId: otherCluster.instance, subnetId: 'subnet-0f0f0f0f', privateIpAddress: '198.18.1.20', tags: { [clusterTagKey]: 'billing' } },
      { id: untagged.eni, instanceId: untagged.instance, subnetId: 'subnet-0f0f0f0f', privateIpAddress: '198.18.1.30' },
    ],
    routeTables: [
      { id: rtb.a, vpcId: 'vpc-0e0e0e0e', main: true, routes: [{ destinationCidrBlock: `${overlayVip}/32`, networkInterfaceId: dbA.eni }] },
      { id: rtb.b, vpcId: 'vpc-0e0e0e0e' },
      { id: rtb.c, vpcId: 'vpc-0e0e0e0e', routes: [{ destinationCidrBlock: `${overlayVip}/32`, networkInterfaceId: dbA.eni }] },
    ],
    iam: {
      accessKeys: Object.fromEntries(
        Object.entries(accessKeys).map(([id, key]) => [id, { ...key, secretAccessKey: testSecretAccessKey }]),
      ),
    },
  };
}

interface AgentCall {
  readonly action: string;
  readonly run: (client: EC2Client) => Promise<unknown>;
}

/**
 * The EC2 calls the agent makes in each mode, in the order of a takeover by db-b (and, in
 * secondary-IP mode, the release on demotion). Each call names the IAM action it needs.
 */
const agentCalls: Record<VipMode, readonly AgentCall[]> = {
  'secondary-ip': [
    {
      action: 'ec2:DescribeNetworkInterfaces',
      run: (c) => c.send(new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'addresses.private-ip-address', Values: [vip] }] })),
    },
    {
      action: 'ec2:AssignPrivateIpAddresses',
      run: (c) => c.send(new AssignPrivateIpAddressesCommand({
        NetworkInterfaceId: dbB.eni,
        PrivateIpAddresses: [vip],
        AllowReassignment: true,
      })),
    },
    {
      action: 'ec2:UnassignPrivateIpAddresses',
      run: (c) =>
        c.send(new UnassignPrivateIpAddressesCommand({ NetworkInterfaceId: dbB.eni, PrivateIpAddresses: [vip] })),
    },
  ],
  'route-table': [
    {
      action: 'ec2:DescribeRouteTables',
      run: (c) =>
        c.send(new DescribeRouteTablesCommand({ RouteTableIds: [rtb.a, rtb.b], Filters: [{ Name: 'route.destination-cidr-block', Values: [`${overlayVip}/32`] }] })),
    },
    {
      action: 'ec2:DescribeNetworkInterfaces',
      run: (c) => c.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [dbB.eni] })),
    },
    {
      action: 'ec2:ReplaceRoute',
      run: (c) => c.send(new ReplaceRouteCommand({ RouteTableId: rtb.a, DestinationCidrBlock: `${overlayVip}/32`, NetworkInterfaceId: dbB.eni })),
    },
    {
      action: 'ec2:CreateRoute',
      run: (c) => c.send(new CreateRouteCommand({ RouteTableId: rtb.b, DestinationCidrBlock: `${overlayVip}/32`, NetworkInterfaceId: dbB.eni })),
    },
  ],
};

/** An SDK client signing with `accessKeyId` for this test's region (the emulator checks the credential scope). */
function ec2Client(endpoint: string, accessKeyId: string): EC2Client {
  return new EC2Client({
    region,
    endpoint,
    credentials: { accessKeyId, secretAccessKey: testSecretAccessKey },
    maxAttempts: 1,
    requestHandler: { requestTimeout: 5_000, connectionTimeout: 2_000, throwOnRequestTimeout: true },
  });
}

/** Errors that mean "this caller may not": a reduced policy may cause them only for the call it lacks. */
const authorizationErrors = new Set(['UnauthorizedOperation', 'AuthFailure']);

const policyFor = (mode: VipMode) =>
  renderAgentPolicy(mode, { region, account, cluster, routeTableIds: [rtb.a, rtb.b] });

/** The policy with one action taken out of one statement (the statement goes when it empties). */
function withoutAction(policy: PolicyDocumentJson, statementIndex: number, action: string): PolicyDocumentJson {
  const Statement = policy.Statement.flatMap((s, i) => {
    if (i !== statementIndex) return [s];
    const Action = s.Action.filter((a) => a !== action);
    return Action.length === 0 ? [] : [{ ...s, Action }];
  });
  return { ...policy, Statement };
}

const asInput = (policy: PolicyDocumentJson) => policy as unknown as IamPolicyInput;

interface Sdk {
  name?: string;
  message?: string;
}

/** Runs the call; returns the EC2 error code, or undefined when it succeeded. */
async function outcome(call: AgentCall, client: EC2Client): Promise<string | undefined> {
  try {
    await call.run(client);
    return undefined;
  } catch (err) {
    return (err as Sdk).name ?? String(err);
  }
}

describe('IAM policies in deploy/iam, enforced by the EC2 emulator', { timeout: 60_000 }, () => {
  let dir: string;
  const emulators: Ec2Emulator[] = [];
  const start = async (accessKeys: Parameters<typeof emulatorConfig>[0]) => {
    const ec2 = await startEc2Emulator(emulatorConfig(accessKeys), { baseDir: dir });
    emulators.push(ec2);
    return ec2;
  };

  before(() => {
    // The SDK must never reach for real IMDS credentials or a real endpoint from a test.
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    dir = mkdtempSync(path.join(tmpdir(), 'pgvip-iam-'));
  });
  after(async () => {
    await Promise.all(emulators.map((e) => e.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  for (const mode of ['secondary-ip', 'route-table'] as const) {
    describe(`agent-${mode}.json`, () => {
      it('allows exactly the actions the agent calls in this mode, nothing else', () => {
        assert.deepEqual(new Set(allowedActions(policyFor(mode))), new Set(agentCalls[mode].map((c) => c.action)));
      });

      it('lets the agent make every call of a takeover by db-b (policy loaded from its file)', async () => {
        const file = path.join(dir, `agent-${mode}.json`);
        writeFileSync(file, JSON.stringify(policyFor(mode), null, 2));
        const key = 'AKIAPGVIPAGENT0001';
        const ec2 = await start({ [key]: { user: `pgvip-agent-${mode}`, policyFile: file } });
        const client = ec2Client(ec2.url, key);
        for (const call of agentCalls[mode]) {
          if (mode === 'secondary-ip' && call.action === 'ec2:UnassignPrivateIpAddresses') {
            // Before the demotion call, check that the takeover really moved the VIP.
            assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbB.eni);
          }
          assert.equal(await outcome(call, client), undefined, `${call.action} should be allowed`);
        }
        if (mode === 'route-table') {
          for (const table of [rtb.a, rtb.b]) {
            const route = ec2.state.control.routeTables.find((t) => t.id === table)!.routes.find((r) => r.destinationCidrBlock === `${overlayVip}/32`);
            assert.equal(route?.networkInterfaceId, dbB.eni, `the VIP route in ${table} points at db-b`);
          }
        }
      });

      const template = loadPolicyTemplate(mode);
      template.Statement.forEach((statement, index) => {
        for (const action of statement.Action) {
          it(`needs ${action} (statement ${statement.Sid ?? index}): without it only that call is refused`, async () => {
            const key = 'AKIAPGVIPREDUCED01';
            const ec2 = await start({ [key]: { user: 'reduced', policy: asInput(withoutAction(policyFor(mode), index, action)) } });
            const client = ec2Client(ec2.url, key);
            for (const call of agentCalls[mode]) {
              const code = await outcome(call, client);
              if (call.action === action) {
                assert.equal(code, 'UnauthorizedOperation', `${call.action} must be refused once the policy lacks it`);
              } else {
                // Other calls may fail for state reasons in this reduced run (e.g. unassigning an
                // address the refused assign never moved), but never for authorization.
                assert.ok(code === undefined || !authorizationErrors.has(code), `${call.action} must stay allowed without ${action}, got ${code}`);
              }
            }
          });
        }
      });

      it(`without a whole statement, every call that statement covers is refused`, async () => {
        for (const [index, statement] of template.Statement.entries()) {
          const key = 'AKIAPGVIPNOSTMT001';
          const reduced = { ...policyFor(mode), Statement: policyFor(mode).Statement.filter((_, i) => i !== index) };
          const ec2 = await start({ [key]: { policy: asInput(reduced) } });
          const client = ec2Client(ec2.url, key);
          for (const call of agentCalls[mode].filter((c) => statement.Action.includes(c.action))) {
            assert.equal(await outcome(call, client), 'UnauthorizedOperation', `${call.action} without statement ${statement.Sid ?? index}`);
          }
        }
      });
    });
  }

  it('denies moving an address on an ENI of another cluster or without the cluster tag', async () => {
    const key = 'AKIAPGVIPAGENT0002';
    const ec2 = await start({ [key]: { user: 'db-agent', policy: asInput(policyFor('secondary-ip')) } });
    const client = ec2Client(ec2.url, key);
    for (const target of [otherCluster, untagged]) {
      const err = await expectEc2Error(
        client.send(new AssignPrivateIpAddressesCommand({
          NetworkInterfaceId: target.eni,
          PrivateIpAddresses: [vip],
          AllowReassignment: true,
        })),
        'UnauthorizedOperation', 403,
      );
      assert.deepEqual((decodeAuthorizationFailure(err.message) as { context: unknown }).context, {
        principal: `arn:aws:iam::${account}:user/db-agent`,
        action: 'ec2:AssignPrivateIpAddresses',
        resource: `arn:aws:ec2:${region}:${account}:network-interface/${target.eni}`,
        region,
      });
      await expectEc2Error(client.send(new UnassignPrivateIpAddressesCommand({ NetworkInterfaceId: target.eni, PrivateIpAddresses: ['198.18.1.20'] })), 'UnauthorizedOperation', 403);
    }
    // The VIP never left db-a: a denied call changes nothing.
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbA.eni);
  });

  it('denies route changes in a route table the policy does not list, and any route call in secondary-IP mode', async () => {
    const keys = { routes: 'AKIAPGVIPROUTES001', secondary: 'AKIAPGVIPSECOND001' };
    const ec2 = await start({ [keys.routes]: { policy: asInput(policyFor('route-table')) }, [keys.secondary]: { policy: asInput(policyFor('secondary-ip')) } });
    const routes = ec2Client(ec2.url, keys.routes);
    await expectEc2Error(
      routes.send(new ReplaceRouteCommand({ RouteTableId: rtb.c, DestinationCidrBlock: `${overlayVip}/32`, NetworkInterfaceId: dbB.eni })),
      'UnauthorizedOperation', 403, new RegExp(`on resource: arn:aws:ec2:${region}:${account}:route-table/${rtb.c} `),
    );
    const secondary = ec2Client(ec2.url, keys.secondary);
    for (const call of agentCalls['route-table'].filter((c) => c.action !== 'ec2:DescribeNetworkInterfaces')) {
      assert.equal(await outcome(call, secondary), 'UnauthorizedOperation', `${call.action} with the secondary-IP policy`);
    }
  });
});

describe('rendering the policy templates', () => {
  it('fills region, account and cluster and expands one route-table ARN per table', () => {
    const policy = renderAgentPolicy('route-table', { region, account, cluster, routeTableIds: [rtb.a, rtb.b, rtb.c] });
    assert.deepEqual(policy.Statement[1]!.Resource, [rtb.a, rtb.b, rtb.c].map((id) => `arn:aws:ec2:${region}:${account}:route-table/${id}`));
    const secondary = renderAgentPolicy('secondary-ip', { region, account, cluster });
    assert.deepEqual(secondary.Statement[1]!.Condition, { StringEquals: { 'aws:ResourceTag/pgvip:cluster': cluster } });
    assert.equal(secondary.Statement[1]!.Resource, `arn:aws:ec2:${region}:${account}:network-interface/*`);
  });

  it('refuses missing route tables and malformed parameters instead of writing a broken policy', () => {
    assert.throws(() => renderAgentPolicy('route-table', { region, account, cluster }), /needs routeTableIds/);
    assert.throws(() => renderAgentPolicy('secondary-ip', { region, account: '1234', cluster }), /account: "1234"/);
    assert.throws(() => renderAgentPolicy('route-table', { region, account, cluster, routeTableIds: ['rtb-*'] }), /routeTableId: "rtb-\*"/);
    assert.throws(() => renderAgentPolicy('secondary-ip', { region: 'eu-west-1"', account, cluster }), /region/);
  });
});
