// Goal: with IAM enforced, each access key gets exactly what its policy file allows (actions,
// resource ARNs, tag conditions).
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
  ReplaceRouteCommand,
  UnassignPrivateIpAddressesCommand,
} from '@aws-sdk/client-ec2';
import { authorize, iamPolicySchema, type IamPolicyInput } from './iam.js';
import { decodeAuthorizationFailure, EmulatorConfigError, startEc2Emulator, type Ec2Emulator } from './index.js';
import { accountId, baseConfig, dbB, ec2Client, expectEc2Error, other, overlayVip, postQuery, region, suiteTimeout, testSecretAccessKey, vip } from './fixtures.js';

const eniArn = (id: string) => `arn:aws:ec2:${region}:${accountId}:network-interface/${id}`;
const routeTableArn = (id: string) => `arn:aws:ec2:${region}:${accountId}:route-table/${id}`;

/** deploy/'s secondary-IP policy shape: describe anything, move addresses only on this cluster's ENIs. */
const agentPolicy: IamPolicyInput = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: ['ec2:DescribeNetworkInterfaces'], Resource: '*' },
    {
      Effect: 'Allow',
      Action: ['ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
      Resource: `arn:aws:ec2:${region}:${accountId}:network-interface/*`,
      Condition: { StringEquals: { 'aws:ResourceTag/pgvip:cluster': 'main' } },
    },
  ],
};
/** The route-table mode policy: routes only in the listed table. */
const routesPolicy: IamPolicyInput = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: ['ec2:DescribeRouteTables', 'ec2:DescribeNetworkInterfaces'], Resource: '*' },
    { Effect: 'Allow', Action: ['ec2:ReplaceRoute', 'ec2:CreateRoute'], Resource: [routeTableArn('rtb-0a1')] },
  ],
};
const describeEnisOnly: IamPolicyInput = { Version: '2012-10-17', Statement: { Effect: 'Allow', Action: 'ec2:DescribeNetworkInterfaces', Resource: '*' } };
const adminButOtherClusters: IamPolicyInput = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: 'ec2:*', Resource: '*' },
    {
      Sid: 'OnlyOurCluster',
      Effect: 'Deny',
      Action: 'ec2:AssignPrivateIpAddresses',
      Resource: '*',
      Condition: { StringNotEquals: { 'ec2:ResourceTag/pgvip:cluster': 'main' } },
    },
  ],
};

const keys = { agent: 'AKIAAGENTTEST0001', routes: 'AKIAROUTESTEST001', reader: 'AKIAREADERTEST001', admin: 'AKIAADMINTEST0001' } as const;

describe('IAM enforcement through the SDK', suiteTimeout, () => {
  let dir: string;
  let ec2: Ec2Emulator;
  const client = (key: string) => ec2Client(ec2.url, { accessKeyId: key });

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ec2-emulator-iam-'));
    const files = { agent: agentPolicy, routes: routesPolicy, reader: describeEnisOnly, admin: adminButOtherClusters };
    for (const [name, policy] of Object.entries(files)) writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(policy));
    ec2 = await startEc2Emulator(
      baseConfig({
        iam: {
          accessKeys: {
            [keys.agent]: { secretAccessKey: testSecretAccessKey, user: 'db-agent', policyFile: 'agent.json' },
            [keys.routes]: { secretAccessKey: testSecretAccessKey, policyFile: 'routes.json' },
            [keys.reader]: { secretAccessKey: testSecretAccessKey, policyFile: 'reader.json' },
            [keys.admin]: { secretAccessKey: testSecretAccessKey, user: 'arn:aws:sts::123456789012:assumed-role/ops/alice', policyFile: 'admin.json' },
          },
        },
      }),
      { baseDir: dir },
    );
  });
  after(async () => {
    await ec2?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lets the agent move the VIP between its own cluster tagged ENIs', async () => {
    await client(keys.agent).send(new AssignPrivateIpAddressesCommand({
      NetworkInterfaceId: dbB.eni,
      PrivateIpAddresses: [vip],
      AllowReassignment: true,
    }));
    await client(keys.agent).send(new DescribeNetworkInterfacesCommand({}));
    await client(keys.agent).send(
      new UnassignPrivateIpAddressesCommand({ NetworkInterfaceId: dbB.eni, PrivateIpAddresses: [vip] }),
    );
  });

  it('denies the agent an ENI tagged for another cluster, naming user, action and resource', async () => {
    const err = await expectEc2Error(
      client(keys.agent).send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: other.eni, PrivateIpAddresses: ['198.18.1.21'] })),
      'UnauthorizedOperation', 403,
    );
    assert.ok(
      err.message.startsWith(
        `You are not authorized to perform this operation. User: arn:aws:iam::${accountId}:user/db-agent is not authorized to perform: ` +
          `ec2:AssignPrivateIpAddresses on resource: ${eniArn(other.eni)} because no identity-based policy allows the ec2:AssignPrivateIpAddresses action. ` +
          'Encoded authorization failure message: ',
      ),
      err.message,
    );
    assert.deepEqual(decodeAuthorizationFailure(err.message), {
      allowed: false,
      explicitDeny: false,
      matchedStatements: [],
      context: { principal: `arn:aws:iam::${accountId}:user/db-agent`, action: 'ec2:AssignPrivateIpAddresses', resource: eniArn(other.eni), region },
    });
  });

  it('denies the agent the route-table actions its policy does not list', async () => {
    await expectEc2Error(client(keys.agent).send(new DescribeRouteTablesCommand({})), 'UnauthorizedOperation', 403, /ec2:DescribeRouteTables on resource: \*/);
    await expectEc2Error(
      client(keys.agent).send(new ReplaceRouteCommand({ RouteTableId: 'rtb-0a1', DestinationCidrBlock: `${overlayVip}/32`, NetworkInterfaceId: dbB.eni })),
      'UnauthorizedOperation', 403,
    );
  });

  it('limits route changes to the route tables listed by ARN', async () => {
    await client(keys.routes).send(new ReplaceRouteCommand({ RouteTableId: 'rtb-0a1', DestinationCidrBlock: `${overlayVip}/32`, NetworkInterfaceId: dbB.eni }));
    await expectEc2Error(
      client(keys.routes).send(new CreateRouteCommand({ RouteTableId: 'rtb-0b2', DestinationCidrBlock: `${overlayVip}/32`, NetworkInterfaceId: dbB.eni })),
      'UnauthorizedOperation', 403, new RegExp(`on resource: ${routeTableArn('rtb-0b2')} `),
    );
  });

  it('proves permissions with DryRun: DryRunOperation when allowed, UnauthorizedOperation when not', async () => {
    const replace = (RouteTableId: string) => new ReplaceRouteCommand({ RouteTableId, DestinationCidrBlock: `${overlayVip}/32`, NetworkInterfaceId: dbB.eni, DryRun: true });
    await expectEc2Error(client(keys.routes).send(replace('rtb-0a1')), 'DryRunOperation', 412);
    await expectEc2Error(client(keys.routes).send(replace('rtb-0b2')), 'UnauthorizedOperation', 403);
    await expectEc2Error(client(keys.reader).send(new DescribeNetworkInterfacesCommand({ DryRun: true })), 'DryRunOperation', 412);
    await expectEc2Error(client(keys.reader).send(new DescribeRouteTablesCommand({ DryRun: true })), 'UnauthorizedOperation', 403);
  });

  it('lets an explicit Deny with a negated tag condition win over a broad Allow', async () => {
    await client(keys.admin).send(new AssignPrivateIpAddressesCommand({
      NetworkInterfaceId: dbB.eni,
      PrivateIpAddresses: [vip],
      AllowReassignment: true,
    }));
    const err = await expectEc2Error(
      client(keys.admin).send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: other.eni, PrivateIpAddresses: ['198.18.1.21'] })),
      'UnauthorizedOperation', 403, /User: arn:aws:sts::123456789012:assumed-role\/ops\/alice is not authorized .* with an explicit deny in an identity-based policy\./,
    );
    assert.deepEqual((decodeAuthorizationFailure(err.message) as { matchedStatements: string[] }).matchedStatements, ['OnlyOurCluster']);
  });

  it('rejects unknown access keys and unsigned requests with AuthFailure 401', async () => {
    await expectEc2Error(client('AKIAUNKNOWNKEY001').send(new DescribeNetworkInterfacesCommand({})), 'AuthFailure', 401, 'AWS was not able to validate the provided access credentials');
    const unsigned = await postQuery(ec2.url, { Action: 'DescribeNetworkInterfaces' });
    assert.equal(unsigned.status, 401);
    assert.equal(unsigned.code, 'AuthFailure');
  });
});

describe('IAM policy evaluation', suiteTimeout, () => {
  const policy = (input: IamPolicyInput) => iamPolicySchema.parse(input);
  const request = (action: string, arn: string, tags: Record<string, string> = {}) => ({
    action,
    region,
    resources: [{ arn, tags }],
  });

  it('matches actions case-insensitively with wildcards, and resources with wildcards', () => {
    const p = policy({ Statement: { Effect: 'Allow', Action: 'EC2:describe*', Resource: 'arn:aws:ec2:*:*:network-interface/eni-0?bb' } });
    assert.equal(authorize([p], request('ec2:DescribeNetworkInterfaces', eniArn('eni-0bbb'))).allowed, true);
    assert.equal(authorize([p], request('ec2:DescribeNetworkInterfaces', eniArn('eni-0bbbb'))).allowed, false);
    assert.equal(authorize([p], request('ec2:AssignPrivateIpAddresses', eniArn('eni-0bbb'))).allowed, false);
  });

  it('supports NotAction, NotResource, StringLike and aws:RequestedRegion', () => {
    const p = policy({
      Statement: [
        { Effect: 'Allow', NotAction: 'ec2:Delete*', NotResource: routeTableArn('rtb-0b2'), Condition: { StringEquals: { 'aws:RequestedRegion': region } } },
        { Effect: 'Deny', Action: 'ec2:*', Resource: '*', Condition: { StringLike: { 'aws:ResourceTag/Name': 'legacy-*' } } },
      ],
    });
    assert.equal(authorize([p], request('ec2:ReplaceRoute', routeTableArn('rtb-0a1'))).allowed, true);
    assert.equal(authorize([p], request('ec2:ReplaceRoute', routeTableArn('rtb-0b2'))).allowed, false);
    assert.equal(authorize([p], request('ec2:DeleteRoute', routeTableArn('rtb-0a1'))).allowed, false);
    assert.equal(authorize([p], request('ec2:ReplaceRoute', routeTableArn('rtb-0a1'), { Name: 'legacy-db' })).allowed, false);
    assert.equal(authorize([p], { ...request('ec2:ReplaceRoute', routeTableArn('rtb-0a1')), region: 'eu-west-1' }).allowed, false);
  });

  it('refuses policies the emulator cannot evaluate faithfully, saying why', () => {
    const unsupported = iamPolicySchema.safeParse({ Statement: [{ Effect: 'Allow', Action: 'ec2:*', Resource: '*', Condition: { IpAddress: { 'aws:SourceIp': '198.18.0.0/15' } } }] });
    assert.equal(unsupported.success, false);
    assert.match(JSON.stringify(unsupported.error?.issues), /supports only the condition operators/);
    const both = iamPolicySchema.safeParse({ Statement: [{ Effect: 'Allow', Action: 'ec2:*', NotAction: 'ec2:Run*', Resource: '*' }] });
    assert.match(JSON.stringify(both.error?.issues), /exactly one of Action and NotAction/);
  });

  it('reports a missing policy file as a config error', async () => {
    await assert.rejects(
      startEc2Emulator(baseConfig({ iam: { accessKeys: { AKIAMISSINGFILE01: { secretAccessKey: testSecretAccessKey, policyFile: '/nonexistent/policy.json' } } } })),
      (err: Error) => err instanceof EmulatorConfigError && /iam\.accessKeys\.AKIAMISSINGFILE01: cannot read IAM policy \/nonexistent\/policy\.json/.test(err.message),
    );
  });
});
