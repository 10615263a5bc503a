// Goal: the real @aws-sdk/client-ec2 drives every emulated operation and gets every error code as AWS sends it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AssignPrivateIpAddressesCommand,
  CreateRouteCommand,
  DescribeNetworkInterfacesCommand,
  DescribeRouteTablesCommand,
  ReplaceRouteCommand,
  UnassignPrivateIpAddressesCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { attachTime, baseConfig, dbA, dbB, ec2Client, emulatorForTest, expectEc2Error, other, overlayVip, postQuery, vip, suiteTimeout } from './fixtures.js';

async function holdersOf(client: EC2Client, address: string): Promise<string[]> {
  const out = await client.send(new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'addresses.private-ip-address', Values: [address] }] }));
  return (out.NetworkInterfaces ?? []).map((eni) => eni.NetworkInterfaceId!);
}

async function routeTarget(client: EC2Client, tableId: string, cidr: string): Promise<string | undefined> {
  const out = await client.send(new DescribeRouteTablesCommand({ RouteTableIds: [tableId] }));
  return out.RouteTables?.[0]?.Routes?.find((r) => r.DestinationCidrBlock === cidr)?.NetworkInterfaceId;
}

describe('AssignPrivateIpAddresses', suiteTimeout, () => {
  it('moves the VIP to another ENI with AllowReassignment and reports only the request id AWS would', async (t) => {
    const ec2 = await emulatorForTest(t);
    const client = ec2Client(ec2.url);
    const out = await client.send(new AssignPrivateIpAddressesCommand({
      NetworkInterfaceId: dbB.eni,
      PrivateIpAddresses: [vip],
      AllowReassignment: true,
    }));
    assert.equal(out.NetworkInterfaceId, dbB.eni);
    assert.deepEqual(out.AssignedPrivateIpAddresses, [{ PrivateIpAddress: vip }]);
    assert.match(out.$metadata.requestId ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(ec2.requests({ action: 'AssignPrivateIpAddresses' })[0]?.requestId, out.$metadata.requestId);
    assert.deepEqual(await holdersOf(client, vip), [dbB.eni]);
  });

  it('refuses an address held by another ENI without AllowReassignment', async (t) => {
    const ec2 = await emulatorForTest(t);
    await expectEc2Error(
      ec2Client(ec2.url).send(
        new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: dbB.eni, PrivateIpAddresses: [vip] }),
      ),
      'InvalidParameterValue', 400, `[${vip}] assigned, but move is not allowed.`,
    );
  });

  it('never moves a primary address, even with AllowReassignment', async (t) => {
    const ec2 = await emulatorForTest(t);
    await expectEc2Error(
      ec2Client(ec2.url).send(
        new AssignPrivateIpAddressesCommand({
          NetworkInterfaceId: dbB.eni,
          PrivateIpAddresses: [dbA.primaryIp],
          AllowReassignment: true,
        }),
      ),
      'InvalidParameterValue', 400, /primary private IP address of eni-0aaa and cannot be reassigned/,
    );
  });

  it('treats assigning an address the ENI already holds as done', async (t) => {
    const ec2 = await emulatorForTest(t);
    const client = ec2Client(ec2.url);
    const out = await client.send(new AssignPrivateIpAddressesCommand({
      NetworkInterfaceId: dbA.eni,
      PrivateIpAddresses: [vip],
      AllowReassignment: true,
    }));
    assert.deepEqual(out.AssignedPrivateIpAddresses, [{ PrivateIpAddress: vip }]);
    assert.deepEqual(await holdersOf(client, vip), [dbA.eni]);
  });

  it('rejects addresses outside the subnet and addresses EC2 reserves', async (t) => {
    const ec2 = await emulatorForTest(t);
    const client = ec2Client(ec2.url);
    await expectEc2Error(
      client.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: dbB.eni, PrivateIpAddresses: ['198.18.2.100'] })),
      'InvalidParameterValue', 400, "Address 198.18.2.100 does not fall within the subnet's address range",
    );
    await expectEc2Error(
      client.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: dbB.eni, PrivateIpAddresses: ['198.18.1.1'] })),
      'InvalidParameterValue', 400, /reserved/,
    );
    await expectEc2Error(
      client.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: dbB.eni, PrivateIpAddresses: ['198.18.1.300'] })),
      'InvalidParameterValue', 400, /Value \(198\.18\.1\.300\) for parameter PrivateIpAddresses is invalid/,
    );
  });

  it('enforces the per-ENI address limit', async (t) => {
    const ec2 = await emulatorForTest(t);
    const client = ec2Client(ec2.url);
    // eni-0ddd allows 2 addresses: its primary and one more.
    await client.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: other.eni, PrivateIpAddresses: ['198.18.1.21'] }));
    await expectEc2Error(
      client.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: other.eni, PrivateIpAddresses: ['198.18.1.22'] })),
      'PrivateIpAddressLimitExceeded', 400, 'Number of private addresses will exceed limit.',
    );
  });

  it('allocates the lowest free addresses for SecondaryPrivateIpAddressCount', async (t) => {
    const ec2 = await emulatorForTest(t);
    const out = await ec2Client(ec2.url).send(
      new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: dbB.eni, SecondaryPrivateIpAddressCount: 2 }),
    );
    // .0-.3 are reserved; .10, .11 and .20 are primaries.
    assert.deepEqual(out.AssignedPrivateIpAddresses?.map((a) => a.PrivateIpAddress), ['198.18.1.4', '198.18.1.5']);
  });

  it('reports a subnet without enough free addresses for SecondaryPrivateIpAddressCount', async (t) => {
    // A /28 has 16 addresses; EC2 reserves 5 and the ENI's primary takes one: 10 are free.
    const ec2 = await emulatorForTest(t, baseConfig({
      subnets: [{ id: 'subnet-0c3', vpcId: 'vpc-0a1', cidrBlock: '198.18.3.0/28', availabilityZone: 'us-east-1a' }],
      networkInterfaces: [{ id: 'eni-0c3', instanceId: 'i-0c3', subnetId: 'subnet-0c3', privateIpAddress: '198.18.3.4', ipv4AddressesMax: 50 }],
      routeTables: [],
    }));
    const client = ec2Client(ec2.url);
    await expectEc2Error(
      client.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: 'eni-0c3', SecondaryPrivateIpAddressCount: 11 })),
      'InsufficientFreeAddressesInSubnet', 400,
    );
    const out = await client.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: 'eni-0c3', SecondaryPrivateIpAddressCount: 10 }));
    assert.equal(out.AssignedPrivateIpAddresses?.length, 10);
  });

  it('reports unknown and malformed ENI ids', async (t) => {
    const ec2 = await emulatorForTest(t);
    const client = ec2Client(ec2.url);
    await expectEc2Error(
      client.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: 'eni-0fff', PrivateIpAddresses: [vip] })),
      'InvalidNetworkInterfaceID.NotFound', 400, "The networkInterface ID 'eni-0fff' does not exist",
    );
    await expectEc2Error(
      client.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: 'db-b', PrivateIpAddresses: [vip] })),
      'InvalidNetworkInterfaceID.Malformed', 400, /Invalid id: "db-b"/,
    );
  });

  it('reports missing, conflicting and unknown parameters the SDK would not send', async (t) => {
    const ec2 = await emulatorForTest(t);
    const missing = await postQuery(ec2.url, { Action: 'AssignPrivateIpAddresses', 'PrivateIpAddress.1': vip });
    assert.equal(missing.status, 400);
    assert.equal(missing.code, 'MissingParameter');
    assert.equal(missing.message, 'The request must contain the parameter NetworkInterfaceId');
    const both = await postQuery(ec2.url, { Action: 'AssignPrivateIpAddresses', NetworkInterfaceId: dbB.eni, 'PrivateIpAddress.1': vip, SecondaryPrivateIpAddressCount: '1' });
    assert.equal(both.code, 'InvalidParameterCombination');
    // AssignPrivateIpAddresses has no DryRun in AWS; a client sending it has a bug worth seeing.
    const dryRun = await postQuery(ec2.url, { Action: 'AssignPrivateIpAddresses', NetworkInterfaceId: dbB.eni, 'PrivateIpAddress.1': vip, DryRun: 'true' });
    assert.equal(dryRun.code, 'UnknownParameter');
    assert.equal(dryRun.message, 'The parameter DryRun is not recognized');
  });
});

describe('UnassignPrivateIpAddresses', suiteTimeout, () => {
  it('removes a secondary address and answers return=true', async (t) => {
    const ec2 = await emulatorForTest(t);
    const client = ec2Client(ec2.url);
    const out = await client.send(
      new UnassignPrivateIpAddressesCommand({ NetworkInterfaceId: dbA.eni, PrivateIpAddresses: [vip] }),
    );
    assert.equal(out.$metadata.httpStatusCode, 200);
    assert.deepEqual(await holdersOf(client, vip), []);
    const raw = await postQuery(ec2.url, { Action: 'AssignPrivateIpAddresses', NetworkInterfaceId: dbA.eni, 'PrivateIpAddress.1': vip });
    assert.equal(raw.status, 200);
    const unassign = await postQuery(ec2.url, { Action: 'UnassignPrivateIpAddresses', NetworkInterfaceId: dbA.eni, 'PrivateIpAddress.1': vip });
    assert.match(unassign.text, /<return>true<\/return>/);
  });

  it('rejects addresses the ENI does not hold, its primary, and a missing list', async (t) => {
    const ec2 = await emulatorForTest(t);
    const client = ec2Client(ec2.url);
    await expectEc2Error(
      client.send(new UnassignPrivateIpAddressesCommand({ NetworkInterfaceId: dbB.eni, PrivateIpAddresses: [vip] })),
      'InvalidParameterValue', 400, `Some of the specified addresses are not assigned to interface ${dbB.eni}`,
    );
    await expectEc2Error(
      client.send(
        new UnassignPrivateIpAddressesCommand({ NetworkInterfaceId: dbA.eni, PrivateIpAddresses: [dbA.primaryIp] }),
      ),
      'InvalidParameterValue', 400, /primary/,
    );
    const missing = await postQuery(ec2.url, { Action: 'UnassignPrivateIpAddresses', NetworkInterfaceId: dbA.eni });
    assert.equal(missing.code, 'MissingParameter');
  });
});

describe('DescribeNetworkInterfaces', suiteTimeout, () => {
  it('answers with every field the VIP mover reads', async (t) => {
    const ec2 = await emulatorForTest(t);
    const out = await ec2Client(ec2.url).send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [dbA.eni] }));
    const eni = out.NetworkInterfaces?.[0];
    assert.equal(out.NetworkInterfaces?.length, 1);
    assert.equal(eni?.SubnetId, 'subnet-0a1');
    assert.equal(eni?.VpcId, 'vpc-0a1');
    assert.equal(eni?.AvailabilityZone, 'us-east-1a');
    assert.equal(eni?.OwnerId, '123456789012');
    assert.equal(eni?.Status, 'in-use');
    assert.equal(eni?.MacAddress, dbA.mac);
    assert.equal(eni?.PrivateIpAddress, dbA.primaryIp);
    assert.equal(eni?.SourceDestCheck, true);
    assert.equal(eni?.Attachment?.InstanceId, dbA.instanceId);
    assert.equal(eni?.Attachment?.DeviceIndex, 0);
    assert.equal(eni?.Attachment?.Status, 'attached');
    assert.deepEqual(eni?.Attachment?.AttachTime, new Date(attachTime));
    assert.deepEqual(eni?.TagSet, [{ Key: 'pgvip:cluster', Value: 'main' }, { Key: 'Name', Value: 'db-a' }]);
    assert.deepEqual(
      eni?.PrivateIpAddresses?.map((a) => [a.PrivateIpAddress, a.Primary]),
      [[dbA.primaryIp, true], [vip, false]],
    );
  });

  it('applies each documented filter, ANDing filters and ORing values, with wildcards', async (t) => {
    const ec2 = await emulatorForTest(t);
    const client = ec2Client(ec2.url);
    const ids = async (...filters: Array<[string, string[]]>) =>
      ((await client.send(
        new DescribeNetworkInterfacesCommand({ Filters: filters.map(([Name, Values]) => ({ Name, Values })) }),
      )).NetworkInterfaces ?? [])
        .map((e) => e.NetworkInterfaceId)
        .sort();
    assert.deepEqual(await ids(['addresses.private-ip-address', [vip]]), [dbA.eni]);
    assert.deepEqual(await ids(['network-interface-id', [dbB.eni, other.eni]]), [dbB.eni, other.eni]);
    assert.deepEqual(await ids(['attachment.instance-id', [dbB.instanceId]]), [dbB.eni]);
    assert.deepEqual(await ids(['subnet-id', ['subnet-0a1']]), [dbA.eni, dbB.eni, other.eni]);
    assert.deepEqual(await ids(['vpc-id', ['vpc-0b2']]), []);
    assert.deepEqual(await ids(['mac-address', [dbB.mac]]), [dbB.eni]);
    assert.deepEqual(await ids(['tag:pgvip:cluster', ['main']]), [dbA.eni, dbB.eni]);
    assert.deepEqual(await ids(['tag:pgvip:cluster', ['main']], ['tag:Name', ['db-?']], ['addresses.private-ip-address', ['198.18.1.1*']]), [dbA.eni, dbB.eni]);
    assert.deepEqual(await ids(['tag-key', ['Name']]), [dbA.eni, dbB.eni]);
  });

  it('rejects an unknown filter and unknown or malformed ids', async (t) => {
    const ec2 = await emulatorForTest(t);
    const client = ec2Client(ec2.url);
    await expectEc2Error(client.send(new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'ip', Values: [vip] }] })), 'InvalidParameterValue', 400, "The filter 'ip' is invalid");
    await expectEc2Error(
      client.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [dbA.eni, 'eni-0fff', 'eni-0eee'] })),
      'InvalidNetworkInterfaceID.NotFound', 400, "The networkInterface IDs 'eni-0fff, eni-0eee' do not exist",
    );
    await expectEc2Error(client.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: ['eni-x'] })), 'InvalidNetworkInterfaceID.Malformed', 400);
  });

  it('pages with MaxResults and NextToken', async (t) => {
    const enis = Array.from({ length: 7 }, (_, i) => ({ id: `eni-1${i}`, instanceId: `i-1${i}`, subnetId: 'subnet-0a1', privateIpAddress: `198.18.1.${50 + i}` }));
    const ec2 = await emulatorForTest(t, baseConfig({ networkInterfaces: enis, routeTables: [] }));
    const client = ec2Client(ec2.url);
    const first = await client.send(new DescribeNetworkInterfacesCommand({ MaxResults: 5 }));
    assert.equal(first.NetworkInterfaces?.length, 5);
    assert.ok(first.NextToken);
    const second = await client.send(
      new DescribeNetworkInterfacesCommand({ MaxResults: 5, NextToken: first.NextToken }),
    );
    assert.deepEqual(second.NetworkInterfaces?.map((e) => e.NetworkInterfaceId), ['eni-15', 'eni-16']);
    assert.equal(second.NextToken, undefined);
    await expectEc2Error(client.send(new DescribeNetworkInterfacesCommand({ MaxResults: 5, NextToken: 'bogus' })), 'InvalidPaginationToken', 400);
    await expectEc2Error(client.send(new DescribeNetworkInterfacesCommand({ MaxResults: 5, NetworkInterfaceIds: ['eni-10'] })), 'InvalidParameterCombination', 400);
  });

  it('answers a permitted DryRun with DryRunOperation 412', async (t) => {
    const ec2 = await emulatorForTest(t);
    await expectEc2Error(
      ec2Client(ec2.url).send(new DescribeNetworkInterfacesCommand({ DryRun: true })),
      'DryRunOperation', 412, 'Request would have succeeded, but DryRun flag is set.',
    );
  });
});

describe('ReplaceRoute and CreateRoute', suiteTimeout, () => {
  const overlayCidr = `${overlayVip}/32`;

  it('points an existing /32 route at another ENI', async (t) => {
    const ec2 = await emulatorForTest(t);
    const client = ec2Client(ec2.url);
    const out = await client.send(new ReplaceRouteCommand({ RouteTableId: 'rtb-0a1', DestinationCidrBlock: overlayCidr, NetworkInterfaceId: dbB.eni }));
    assert.equal(out.$metadata.httpStatusCode, 200);
    assert.equal(await routeTarget(client, 'rtb-0a1', overlayCidr), dbB.eni);
  });

  it('refuses to replace a route that does not exist, with the message AWS gives', async (t) => {
    const ec2 = await emulatorForTest(t);
    await expectEc2Error(
      ec2Client(ec2.url).send(new ReplaceRouteCommand({ RouteTableId: 'rtb-0b2', DestinationCidrBlock: overlayCidr, NetworkInterfaceId: dbB.eni })),
      'InvalidParameterValue', 400, `There is no route defined for '${overlayCidr}' in the route table. Use CreateRoute instead.`,
    );
  });

  it('creates a missing route, then refuses a duplicate with RouteAlreadyExists', async (t) => {
    const ec2 = await emulatorForTest(t);
    const client = ec2Client(ec2.url);
    await client.send(new CreateRouteCommand({ RouteTableId: 'rtb-0b2', DestinationCidrBlock: overlayCidr, NetworkInterfaceId: dbB.eni }));
    assert.equal(await routeTarget(client, 'rtb-0b2', overlayCidr), dbB.eni);
    await expectEc2Error(
      client.send(new CreateRouteCommand({ RouteTableId: 'rtb-0b2', DestinationCidrBlock: overlayCidr, NetworkInterfaceId: dbA.eni })),
      'RouteAlreadyExists', 400, `The route identified by ${overlayCidr} already exists.`,
    );
  });

  it('routes to an instance through its only ENI', async (t) => {
    const ec2 = await emulatorForTest(t);
    const client = ec2Client(ec2.url);
    await client.send(new ReplaceRouteCommand({ RouteTableId: 'rtb-0a1', DestinationCidrBlock: overlayCidr, InstanceId: dbB.instanceId }));
    assert.equal(await routeTarget(client, 'rtb-0a1', overlayCidr), dbB.eni);
    await expectEc2Error(
      client.send(new ReplaceRouteCommand({ RouteTableId: 'rtb-0a1', DestinationCidrBlock: overlayCidr, InstanceId: 'i-0fff' })),
      'InvalidInstanceID.NotFound', 400,
    );
    await expectEc2Error(
      client.send(new ReplaceRouteCommand({ RouteTableId: 'rtb-0a1', DestinationCidrBlock: overlayCidr, InstanceId: 'db-b' })),
      'InvalidInstanceID.Malformed', 400,
    );
  });

  it('refuses an instance target with several ENIs: the caller must name one', async (t) => {
    const config = baseConfig();
    const secondEni = { id: 'eni-0b2', instanceId: dbB.instanceId, deviceIndex: 1, subnetId: 'subnet-0a1', privateIpAddress: '198.18.1.12' };
    const ec2 = await emulatorForTest(t, { ...config, networkInterfaces: [...config.networkInterfaces!, secondEni] });
    await expectEc2Error(
      ec2Client(ec2.url).send(new ReplaceRouteCommand({ RouteTableId: 'rtb-0a1', DestinationCidrBlock: overlayCidr, InstanceId: dbB.instanceId })),
      'InvalidInstanceID', 400, /There are multiple interfaces attached to instance 'i-0bbb'/,
    );
  });

  it('reports unknown tables, unknown targets, bad CIDRs and a missing target', async (t) => {
    const ec2 = await emulatorForTest(t);
    const client = ec2Client(ec2.url);
    await expectEc2Error(
      client.send(new ReplaceRouteCommand({ RouteTableId: 'rtb-0fff', DestinationCidrBlock: overlayCidr, NetworkInterfaceId: dbB.eni })),
      'InvalidRouteTableID.NotFound', 400, "The routeTable ID 'rtb-0fff' does not exist",
    );
    await expectEc2Error(
      client.send(new ReplaceRouteCommand({ RouteTableId: 'main', DestinationCidrBlock: overlayCidr, NetworkInterfaceId: dbB.eni })),
      'InvalidRouteTableID.Malformed', 400,
    );
    await expectEc2Error(
      client.send(new ReplaceRouteCommand({ RouteTableId: 'rtb-0a1', DestinationCidrBlock: overlayCidr, NetworkInterfaceId: 'eni-0fff' })),
      'InvalidNetworkInterfaceID.NotFound', 400,
    );
    await expectEc2Error(
      client.send(new CreateRouteCommand({ RouteTableId: 'rtb-0a1', DestinationCidrBlock: '198.19.0.999/32', NetworkInterfaceId: dbB.eni })),
      'InvalidParameterValue', 400, /destinationCidrBlock/,
    );
    const noTarget = await postQuery(ec2.url, { Action: 'CreateRoute', RouteTableId: 'rtb-0a1', DestinationCidrBlock: '198.19.0.11/32' });
    assert.equal(noTarget.code, 'MissingParameter');
    // EC2 names the missing table in lower camel case, as in its other route messages.
    const noTable = await postQuery(ec2.url, { Action: 'ReplaceRoute', DestinationCidrBlock: overlayCidr, NetworkInterfaceId: dbB.eni });
    assert.deepEqual([noTable.status, noTable.code, noTable.message], [400, 'MissingParameter', 'The request must contain the parameter routeTableId']);
  });

  it('answers DryRun with DryRunOperation and changes nothing', async (t) => {
    const ec2 = await emulatorForTest(t);
    const client = ec2Client(ec2.url);
    await expectEc2Error(
      client.send(new ReplaceRouteCommand({ RouteTableId: 'rtb-0a1', DestinationCidrBlock: overlayCidr, NetworkInterfaceId: dbB.eni, DryRun: true })),
      'DryRunOperation', 412,
    );
    await expectEc2Error(
      client.send(new CreateRouteCommand({ RouteTableId: 'rtb-0b2', DestinationCidrBlock: overlayCidr, NetworkInterfaceId: dbB.eni, DryRun: true })),
      'DryRunOperation', 412,
    );
    assert.equal(await routeTarget(client, 'rtb-0a1', overlayCidr), dbA.eni);
    assert.equal(await routeTarget(client, 'rtb-0b2', overlayCidr), undefined);
  });
});

describe('DescribeRouteTables', suiteTimeout, () => {
  it('selects by id and by filter and shows route targets and states', async (t) => {
    const ec2 = await emulatorForTest(t);
    const client = ec2Client(ec2.url);
    const byId = await client.send(new DescribeRouteTablesCommand({ RouteTableIds: ['rtb-0a1'] }));
    assert.deepEqual(byId.RouteTables?.map((r) => r.RouteTableId), ['rtb-0a1']);
    const routes = byId.RouteTables?.[0]?.Routes ?? [];
    const described = routes.map((r) => [
      r.DestinationCidrBlock,
      r.GatewayId ?? r.NetworkInterfaceId,
      r.InstanceId,
      r.State,
      r.Origin,
    ]);
    assert.deepEqual(described, [
      ['198.18.0.0/16', 'local', undefined, 'active', 'CreateRouteTable'],
      [`${overlayVip}/32`, dbA.eni, dbA.instanceId, 'active', 'CreateRoute'],
    ]);
    const tables = async (Name: string, Values: string[], ids?: string[]) =>
      ((await client.send(
        new DescribeRouteTablesCommand({ RouteTableIds: ids, Filters: [{ Name, Values }] }),
      )).RouteTables ?? []).map((r) => r.RouteTableId);
    assert.deepEqual(await tables('route.destination-cidr-block', [`${overlayVip}/32`]), ['rtb-0a1']);
    assert.deepEqual(await tables('vpc-id', ['vpc-0a1']), ['rtb-0a1', 'rtb-0b2']);
    assert.deepEqual(await tables('route-table-id', ['rtb-0b2']), ['rtb-0b2']);
    assert.deepEqual(await tables('association.subnet-id', ['subnet-0b2']), ['rtb-0b2']);
    assert.deepEqual(await tables('route.destination-cidr-block', [`${overlayVip}/32`], ['rtb-0b2']), []);
    await expectEc2Error(client.send(new DescribeRouteTablesCommand({ RouteTableIds: ['rtb-0fff'] })), 'InvalidRouteTableID.NotFound', 400);
    await expectEc2Error(client.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'destination', Values: ['x'] }] })), 'InvalidParameterValue', 400);
    await expectEc2Error(client.send(new DescribeRouteTablesCommand({ DryRun: true })), 'DryRunOperation', 412);
  });
});

describe('the Query API envelope', suiteTimeout, () => {
  it('answers errors as <Response><Errors> with RequestID and the request-id header', async (t) => {
    const ec2 = await emulatorForTest(t);
    const res = await postQuery(ec2.url, { Action: 'RunInstances' });
    assert.equal(res.status, 400);
    assert.equal(res.code, 'InvalidAction');
    assert.equal(res.message, 'The action RunInstances is not valid for this web service.');
    assert.equal(res.contentType, 'text/xml;charset=UTF-8');
    assert.match(res.text, /<Response><Errors><Error><Code>InvalidAction<\/Code><Message>[^<]+<\/Message><\/Error><\/Errors><RequestID>([0-9a-f-]{36})<\/RequestID><\/Response>/);
    assert.equal(/<RequestID>([^<]+)<\/RequestID>/.exec(res.text)?.[1], res.requestId);
    const missing = await postQuery(ec2.url, {});
    assert.equal(missing.code, 'MissingAction');
  });

  it('answers success as <{Op}Response xmlns=...> with a requestId element equal to the header', async (t) => {
    const ec2 = await emulatorForTest(t);
    const res = await postQuery(ec2.url, { Action: 'AssignPrivateIpAddresses', NetworkInterfaceId: dbB.eni, 'PrivateIpAddress.1': vip, AllowReassignment: 'true' });
    assert.equal(res.status, 200);
    assert.match(res.text, /<AssignPrivateIpAddressesResponse xmlns="http:\/\/ec2\.amazonaws\.com\/doc\/2016-11-15\/">/);
    assert.equal(/<requestId>([^<]+)<\/requestId>/.exec(res.text)?.[1], res.requestId);
    assert.match(res.text, /<assignedPrivateIpAddressesSet><item><privateIpAddress>198\.18\.1\.100<\/privateIpAddress><\/item><\/assignedPrivateIpAddressesSet>/);
    assert.match(res.text, /<assignedIpv4PrefixSet\/>/);
  });

  it('refuses a signature scoped to another region', async (t) => {
    const ec2 = await emulatorForTest(t);
    const res = await postQuery(ec2.url, { Action: 'DescribeNetworkInterfaces' }, {
      authorization: 'AWS4-HMAC-SHA256 Credential=AKIDTESTDEFAULT0/20250101/eu-west-1/ec2/aws4_request, SignedHeaders=host, Signature=00',
    });
    assert.equal(res.status, 401);
    assert.equal(res.code, 'AuthFailure');
  });
});
