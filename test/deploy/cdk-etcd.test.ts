// Goal: the CDK app's `etcd` option (docs/etcd.md) synthesises offline into least privilege: created
// members reachable on the client port from the database nodes and the witness only and on the peer
// port from each other only, a role that reads their TLS secret and nothing else, etcd's data on a
// volume of its own, and a boot script that unpacks etcd only after its SHA-256 matched and runs it
// with TLS and client certificates on both ports; existing members get the client port opened in their
// group and nothing more. Descriptions that would lose quorum with one AZ are refused. cdk-nag stays clean.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadClusterConfig, parseClusterConfig, type ClusterConfigInput } from '../../deploy/cdk/lib/cluster-config.js';
import { etcdPorts } from '../../deploy/cdk/lib/etcd-members.js';
import { PgvipClusterStack } from '../../deploy/cdk/lib/pgvip-stack.js';

const example = loadClusterConfig(path.resolve(import.meta.dirname, '../../deploy/cdk/examples/orders-secondary-ip.json'));
const outdirs: string[] = [];
after(() => outdirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const subnet = (az: 'a' | 'b' | 'c', n: number) => ({ id: `subnet-0e7c0d00000000${n}${az === 'a' ? 1 : az === 'b' ? 2 : 3}`, availabilityZone: `eu-west-1${az}`, cidrBlock: `10.0.${n}.0/24` });
const tlsSecretArn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgvip/etcd-tls-AbCdEf';
const release = { url: 'https://github.com/etcd-io/etcd/releases/download/v3.5.17/etcd-v3.5.17-linux-amd64.tar.gz', sha256: 'a'.repeat(64) };
const members = [
  { address: '10.0.21.21', subnet: subnet('a', 21) },
  { address: '10.0.22.21', subnet: subnet('b', 22) },
  { address: '10.0.23.21', subnet: subnet('c', 23) },
];

function described(etcd: unknown) {
  return parseClusterConfig({ ...(example as ClusterConfigInput), etcd });
}

function synth(etcd: unknown, acknowledgeNagFindings = true) {
  const outdir = mkdtempSync(path.join(tmpdir(), 'pgvip-cdk-etcd-'));
  outdirs.push(outdir);
  const app = new App({ outdir });
  const cluster = described(etcd);
  const stack = new PgvipClusterStack(app, `pgvip-${cluster.clusterName}`, { cluster, acknowledgeNagFindings });
  return { app, stack, template: Template.fromStack(stack) };
}

type Resources = Record<string, { Properties: Record<string, unknown> }>;
type Statement = { Action: string | string[]; Resource: unknown };
type Volume = { DeviceName: string; Ebs: { VolumeType: string; Encrypted: boolean } };
const nagFindings = (app: App): string[] =>
  new AwsSolutionsChecks(app).validateScope(app).violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} @ ${r.constructPath}`));

describe('CDK app: etcd for the etcd quorum backend', { timeout: 120_000 }, () => {
  it('creates three members: client port from the database nodes and the witness only, peer port among them only', () => {
    const { stack, template } = synth({ kind: 'create', members, release, tlsSecretArn });
    const id = (sg: unknown) => stack.getLogicalId((sg as { node: { defaultChild: never } }).node.defaultChild);
    const etcdSg = id(stack.etcd!.securityGroup);
    const rules = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress') as Resources)
      .map((r) => r.Properties as { GroupId: { 'Fn::GetAtt': [string] }; SourceSecurityGroupId: { 'Fn::GetAtt': [string] }; FromPort: number })
      .filter((p) => p.GroupId['Fn::GetAtt'][0] === etcdSg)
      .map((p) => `${p.FromPort} from ${p.SourceSecurityGroupId['Fn::GetAtt'][0]}`);
    const group = template.findResources('AWS::EC2::SecurityGroup')[etcdSg] as { Properties: { SecurityGroupIngress?: unknown[] } };
    assert.deepEqual(group.Properties.SecurityGroupIngress ?? [], [], 'no rule from a CIDR block');
    const expected = [`${etcdPorts.client} from ${id(stack.dbSecurityGroup)}`, `${etcdPorts.client} from ${id(stack.witnessSecurityGroup)}`, `${etcdPorts.peer} from ${etcdSg}`];
    assert.deepEqual(rules.sort(), expected.sort());
    assert.deepEqual(stack.etcd!.endpoints, ['https://10.0.21.21:2379', 'https://10.0.22.21:2379', 'https://10.0.23.21:2379']);
    assert.deepEqual(template.findOutputs('EtcdEndpoints').EtcdEndpoints!.Value, 'https://10.0.21.21:2379,https://10.0.22.21:2379,https://10.0.23.21:2379');
  });

  it('gives the members a role that reads their TLS secret and nothing else, and a data volume of their own', () => {
    const { stack, template } = synth({ kind: 'create', members, release, tlsSecretArn });
    const roleId = stack.getLogicalId(stack.etcd!.role!.node.defaultChild as iam.CfnRole);
    const statements = Object.values(template.findResources('AWS::IAM::Policy') as Resources)
      .filter((p) => JSON.stringify(p.Properties.Roles).includes(`"${roleId}"`))
      .flatMap((p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    assert.deepEqual(statements.map((s) => [s.Action, s.Resource]), [[['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], tlsSecretArn]]);
    const all = Object.entries(template.findResources('AWS::EC2::Instance') as Resources);
    const instances = all.filter(([, r]) => JSON.stringify(r.Properties.Tags).includes('"etcd"'));
    assert.equal(instances.length, 3);
    for (const [name, r] of instances) {
      const volumes = r.Properties.BlockDeviceMappings as Volume[];
      assert.deepEqual(volumes.map((v) => [v.DeviceName, v.Ebs.VolumeType, v.Ebs.Encrypted]), [['/dev/xvda', 'gp3', true], ['/dev/sdf', 'gp3', true]], name);
      assert.deepEqual(r.Properties.MetadataOptions, { HttpEndpoint: 'enabled', HttpPutResponseHopLimit: 1, HttpTokens: 'required' });
    }
  });

  it('boots each member: etcd unpacked only after its SHA-256 matched, TLS with client certificates on both ports, the whole cluster named', () => {
    const { template } = synth({ kind: 'create', members, release, tlsSecretArn });
    const [, first] = Object.entries(template.findResources('AWS::EC2::Instance') as Resources).find(([id]) => id.startsWith('Etcd1'))!;
    const script = JSON.stringify(first.Properties.UserData);
    const check = script.indexOf(`sha256sum -c -`);
    assert.ok(check > 0 && check < script.indexOf('tar -xzf /root/etcd.tar.gz'), 'the checksum is checked before the tarball is unpacked');
    assert.ok(script.includes(release.sha256));
    for (const flag of ['--client-cert-auth', '--peer-client-cert-auth', '--trusted-ca-file', '--peer-trusted-ca-file', '--name etcd-1', '--listen-client-urls https://10.0.21.21:2379']) {
      assert.ok(script.includes(flag), `${flag} in the unit`);
    }
    assert.ok(script.includes('--initial-cluster etcd-1=https://10.0.21.21:2380,etcd-2=https://10.0.22.21:2380,etcd-3=https://10.0.23.21:2380'));
    assert.doesNotMatch(script, /http:\/\/10\./, 'no plain-HTTP listener');
  });

  it('opens existing members\' group on the client port to this cluster only', () => {
    const { stack, template } = synth({ kind: 'existing', endpoints: ['https://10.0.31.5:2379'], securityGroupId: 'sg-0e7c0d0000000001' });
    const rules = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress') as Resources)
      .map((r) => r.Properties as { GroupId: unknown; SourceSecurityGroupId: { 'Fn::GetAtt': [string] }; FromPort: number; ToPort: number })
      .filter((p) => p.GroupId === 'sg-0e7c0d0000000001');
    assert.deepEqual(rules.map((p) => [p.FromPort, p.ToPort, p.SourceSecurityGroupId['Fn::GetAtt'][0]]).sort(), [
      [2379, 2379, stack.getLogicalId(stack.dbSecurityGroup.node.defaultChild as never)],
      [2379, 2379, stack.getLogicalId(stack.witnessSecurityGroup.node.defaultChild as never)],
    ].sort());
    assert.equal(Object.keys(template.findResources('AWS::EC2::Instance')).length, 3, 'no etcd instance');
    assert.equal(template.findOutputs('EtcdEndpoints').EtcdEndpoints!.Value, 'https://10.0.31.5:2379');
  });

  it('refuses 4 members, a majority in one AZ, a bad checksum and plain-HTTP endpoints', () => {
    assert.throws(() => described({ kind: 'create', members: [...members, { address: '10.0.21.22', subnet: subnet('a', 21) }], release, tlsSecretArn }), /run 3 or 5 etcd members/);
    const twoInA = [members[0]!, { address: '10.0.21.22', subnet: subnet('a', 21) }, members[2]!];
    assert.throws(() => described({ kind: 'create', members: twoInA, release, tlsSecretArn }), /2 of 3 etcd members are in eu-west-1a: losing that AZ would lose etcd's quorum/);
    assert.throws(() => described({ kind: 'create', members, release: { ...release, sha256: 'abc' }, tlsSecretArn }), /SHA-256/);
    assert.throws(() => described({ kind: 'existing', endpoints: ['http://10.0.31.5:2379'] }), /https:\/\/ client URL/);
    assert.throws(() => described({ kind: 'create', members: [{ ...members[0]!, address: example.dbA.address }, members[1]!, members[2]!], release, tlsSecretArn }), /not inside its subnet|already another instance's address/);
  });

  it('cdk-nag: clean, and each acknowledgment on the members stands for a real finding', () => {
    const { app, stack } = synth({ kind: 'create', members, release, tlsSecretArn });
    assert.deepEqual(nagFindings(app), []);
    const bare = nagFindings(synth({ kind: 'create', members, release, tlsSecretArn }, false).app);
    for (const a of stack.nagAcknowledgments) assert.ok(bare.some((f) => f.startsWith(`${a.id} @ ${a.path}`)), `${a.id} on ${a.path} acknowledges nothing`);
    for (const f of bare) assert.ok(stack.nagAcknowledgments.some((a) => f.startsWith(`${a.id} @ ${a.path}`)), `finding ${f} is neither fixed nor acknowledged`);
  });
});
