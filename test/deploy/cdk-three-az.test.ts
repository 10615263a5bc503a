// Goal: the CDK app builds the production layout of issue 17 (docs/design.md, "More than one
// standby", "The VIP among N nodes") from deploy/cdk/examples/payments-three-az.json: three database
// instances, one in each of three AZs, route-table VIP mode (the VIP's /32 in each AZ's route table,
// first at db-a's ENI; source/destination check off on every DB ENI; the VIP outside the VPC), the
// agents' ReplaceRoute/CreateRoute on exactly those route tables, and etcd members one per AZ on hosts
// of their own (docs/etcd.md). Descriptions that would break the layout are refused with the field
// and the fix; cdk-nag stays clean with every acknowledgment real.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { inCidr, loadClusterConfig, parseClusterConfig, type ClusterConfig, type ClusterConfigInput } from '../../deploy/cdk/lib/cluster-config.js';
import { clusterTagKey } from '../../deploy/cdk/lib/iam-policies.js';
import { PgvipClusterStack } from '../../deploy/cdk/lib/pgvip-stack.js';

const examples = path.resolve(import.meta.dirname, '../../deploy/cdk/examples');
const threeAz = loadClusterConfig(path.join(examples, 'payments-three-az.json')) as Extract<ClusterConfig, { mode: 'route-table' }>;
const secondaryIp = loadClusterConfig(path.join(examples, 'orders-secondary-ip.json'));
const outdirs: string[] = [];
after(() => outdirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function synth(cluster: ClusterConfig, acknowledgeNagFindings = true) {
  const outdir = mkdtempSync(path.join(tmpdir(), 'pgvip-cdk-3az-'));
  outdirs.push(outdir);
  const app = new App({ outdir });
  const stack = new PgvipClusterStack(app, `pgvip-${cluster.clusterName}`, { cluster, acknowledgeNagFindings });
  return { app, stack, template: Template.fromStack(stack) };
}

type Resources = Record<string, { Properties: Record<string, unknown> }>;
type Tag = { Key: string; Value: string };
const nagFindings = (app: App): string[] =>
  new AwsSolutionsChecks(app).validateScope(app).violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} @ ${r.constructPath}`));
const tagOf = (tags: unknown, key: string) => (tags as Tag[]).find((t) => t.Key === key)?.Value;
const input = (c: ClusterConfig) => JSON.parse(JSON.stringify(c)) as ClusterConfigInput & Record<string, unknown>;

describe('CDK app: three database nodes in three AZs (route-table mode)', { timeout: 120_000 }, () => {
  const s = synth(threeAz);
  const instances = Object.entries(s.template.findResources('AWS::EC2::Instance') as Resources);
  const dbInstances = instances.filter(([, r]) => tagOf(r.Properties.Tags, 'pgvip:role') === 'database');

  it('puts db-a, db-b and db-c on ENIs of their own, one per AZ, each tagged for the cluster with source/destination check off', () => {
    const enis = s.template.findResources('AWS::EC2::NetworkInterface') as Resources;
    assert.deepEqual(Object.keys(enis).sort(), ['DbAInterface', 'DbBInterface', 'DbCInterface']);
    const subnets: string[] = [];
    for (const [id, eni] of Object.entries(enis)) {
      assert.equal(tagOf(eni.Properties.Tags, clusterTagKey), 'payments', id);
      assert.equal(eni.Properties.SourceDestCheck, false, `${id}: the node receives packets for the VIP, not its own address`);
      assert.equal(eni.Properties.PrivateIpAddresses, undefined, `${id}: the VIP is no ENI address in route-table mode`);
      subnets.push(eni.Properties.SubnetId as string);
    }
    const azOf = new Map([threeAz.dbA, threeAz.dbB, threeAz.dbC!].map((n) => [n.subnet.id, n.subnet.availabilityZone]));
    assert.deepEqual(subnets.map((id) => azOf.get(id)).sort(), ['eu-west-1a', 'eu-west-1b', 'eu-west-1c']);
    assert.deepEqual(dbInstances.map(([id]) => id).sort(), ['DbA', 'DbB', 'DbC']);
    for (const [id, r] of dbInstances) {
      assert.deepEqual(r.Properties.NetworkInterfaces, [{ DeviceIndex: '0', NetworkInterfaceId: { Ref: `${id}Interface` } }]);
    }
    assert.deepEqual(Object.keys(s.template.findOutputs('DbCInstanceId')), ['DbCInstanceId']);
    assert.deepEqual(s.template.findOutputs('DbCInterfaceId').DbCInterfaceId!.Value, { Ref: 'DbCInterface' });
  });

  it("routes the VIP's /32 in each AZ's route table to db-a's ENI; the VIP lies outside the VPC", () => {
    const routes = Object.values(s.template.findResources('AWS::EC2::Route') as Resources).map((r) => r.Properties);
    const azTables = [threeAz.dbA, threeAz.dbB, threeAz.dbC!].map((n) => n.subnet.routeTableId);
    assert.deepEqual(routes.map((r) => r.RouteTableId).sort(), [...azTables].sort());
    for (const r of routes) assert.deepEqual([r.DestinationCidrBlock, r.NetworkInterfaceId], [`${threeAz.vip}/32`, { Ref: 'DbAInterface' }]);
    assert.equal(inCidr(threeAz.vip, threeAz.vpc.cidrBlock), false);
  });

  it('lets the agents change routes in exactly those three tables, and nothing else in EC2 but Describe calls', () => {
    type Statement = { Action: string | string[]; Resource: unknown };
    type Policy = { PolicyName: string; PolicyDocument: { Statement: Statement[] } };
    const roleId = s.stack.getLogicalId(s.stack.agentRole.node.defaultChild as iam.CfnRole);
    const role = s.template.findResources('AWS::IAM::Role')[roleId] as { Properties: { Policies: Policy[] } };
    const statements = role.Properties.Policies.find((p) => p.PolicyName === 'pgvip-vip')!.PolicyDocument.Statement;
    const arn = (table: string) => ({ 'Fn::Join': ['', ['arn:aws:ec2:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:route-table/${table}`]] });
    assert.deepEqual(statements.map((st) => [[st.Action].flat(), st.Resource]), [
      [['ec2:DescribeRouteTables', 'ec2:DescribeNetworkInterfaces'], '*'],
      [['ec2:ReplaceRoute', 'ec2:CreateRoute'], threeAz.routeTableIds.map(arn)],
    ]);
  });

  it('runs the etcd members one per AZ, on hosts of their own, in the database nodes\' AZs', () => {
    const members = instances.filter(([, r]) => tagOf(r.Properties.Tags, 'pgvip:role') === 'etcd');
    assert.equal(members.length, 3);
    const e = threeAz.etcd!;
    assert.ok(e.kind === 'create');
    const azs = e.members.map((m) => m.subnet.availabilityZone);
    const dbAzs = [threeAz.dbA, threeAz.dbB, threeAz.dbC!].map((n) => n.subnet.availabilityZone);
    assert.deepEqual([...new Set(azs)].sort(), dbAzs.sort());
    const dbAddresses = [threeAz.dbA, threeAz.dbB, threeAz.dbC!].map((n) => n.address);
    assert.ok(e.members.every((m) => !dbAddresses.includes(m.address)));
    assert.equal(s.template.findOutputs('EtcdEndpoints').EtcdEndpoints!.Value, 'https://10.0.1.21:2379,https://10.0.2.21:2379,https://10.0.3.21:2379');
  });

  it('cdk-nag: clean; each acknowledgment stands for a real finding and counts three nodes', () => {
    assert.deepEqual(nagFindings(s.app), []);
    const bare = nagFindings(synth(threeAz, false).app);
    for (const a of s.stack.nagAcknowledgments) assert.ok(bare.some((f) => f.startsWith(`${a.id} @ ${a.path}`)), `${a.id} on ${a.path} acknowledges nothing`);
    for (const f of bare) assert.ok(s.stack.nagAcknowledgments.some((a) => f.startsWith(`${a.id} @ ${a.path}`)), `finding ${f} is neither fixed nor acknowledged`);
    assert.ok(!s.stack.nagAcknowledgments.some((a) => /\btwo\b/.test(a.reason)), 'no reason speaks of two nodes');
  });

  it('secondary-ip with three nodes: all three in one subnet, the VIP on db-a first, source/destination check on', () => {
    const raw = { ...input(secondaryIp), dbC: { address: '10.0.1.13', subnet: secondaryIp.dbA.subnet }, etcd: { kind: 'existing', endpoints: ['https://10.0.21.21:2379'] } };
    const { template } = synth(parseClusterConfig(raw));
    const enis = template.findResources('AWS::EC2::NetworkInterface') as Resources;
    assert.deepEqual(Object.keys(enis).sort(), ['DbAInterface', 'DbBInterface', 'DbCInterface']);
    const placed = Object.values(enis).map((e) => [e.Properties.SubnetId, e.Properties.SourceDestCheck]);
    assert.deepEqual(placed, Array(3).fill([secondaryIp.dbA.subnet.id, true]));
    assert.deepEqual(enis.DbCInterface!.Properties.PrivateIpAddress, '10.0.1.13');
    assert.equal(enis.DbAInterface!.Properties.PrivateIpAddresses !== undefined, true);
  });

  it('refuses three-node descriptions that break the layout, naming the field and the fix', () => {
    const base = input(threeAz);
    const { etcd: _etcd, ...withoutEtcd } = base;
    const cases: Array<[string, unknown, RegExp]> = [
      ['three nodes without etcd', withoutEtcd, /three database nodes need the etcd quorum backend: add an etcd block.*\n.*at dbC/],
      ['two DB nodes in one AZ', { ...base, dbC: { ...base.dbC, address: '10.0.1.42', subnet: base.dbA.subnet } }, /one in each of three AZs.*eu-west-1a already holds another DB node\n.*at dbC\.subnet\.availabilityZone/],
      ["an AZ's route table left out", { ...base, routeTableIds: threeAz.routeTableIds.slice(0, 2) }, /dbC's subnet routes through rtb-0c1d2e3f4a5b6073a, which is not listed: clients in eu-west-1c would not reach the VIP; add it\n.*at routeTableIds/],
      ['the VIP inside the VPC', { ...base, vip: '10.0.9.9' }, /must lie outside the VPC CIDR/],
      ['db-c on an etcd member\'s address', { ...base, dbC: { ...base.dbC, address: '10.0.3.21' } }, /10\.0\.3\.21 is already another instance's address/],
      ['secondary-ip with db-c in another subnet', { ...input(secondaryIp), dbC: base.dbC, etcd: base.etcd }, /secondary-ip mode needs all DB nodes in one subnet.*\n.*at dbC\.subnet\.id/],
    ];
    for (const [what, raw, expected] of cases) assert.throws(() => parseClusterConfig(raw), expected, what);
  });
});
