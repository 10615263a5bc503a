// Goal: the CDK app in deploy/cdk synthesises offline (no AWS account, no lookups) for both VIP modes
// into what docs/deploy.md promises: tagged ENIs, the VIP where pgvip expects it, the agent policy
// taken verbatim from deploy/iam, a witness without EC2 rights, members-only pgvip ports, the cluster
// key in Secrets Manager, and cdk-nag's AWS Solutions checks clean, every acknowledgment with a reason
// and standing for a real finding.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadClusterConfig, parseClusterConfig, type ClusterConfig } from '../../deploy/cdk/lib/cluster-config.js';
import { clusterTagKey, loadPolicyTemplate, renderAgentPolicy } from '../../deploy/cdk/lib/iam-policies.js';
import { PgvipClusterStack, ports } from '../../deploy/cdk/lib/pgvip-stack.js';

const examples = path.resolve(import.meta.dirname, '../../deploy/cdk/examples');
const secondaryIp = loadClusterConfig(path.join(examples, 'orders-secondary-ip.json'));
const routeTable = loadClusterConfig(path.join(examples, 'billing-route-table.json'));

interface Synth {
  readonly app: App;
  readonly stack: PgvipClusterStack;
  readonly template: Template;
}

/** Cloud assemblies go to temporary directories, removed when the suite ends. */
const outdirs: string[] = [];
after(() => outdirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function synth(cluster: ClusterConfig, acknowledgeNagFindings = true): Synth {
  // No env: account and region stay tokens, so nothing can be looked up in an AWS account.
  const outdir = mkdtempSync(path.join(tmpdir(), 'pgvip-cdk-'));
  outdirs.push(outdir);
  const app = new App({ outdir });
  const stack = new PgvipClusterStack(app, `pgvip-${cluster.clusterName}`, { cluster, acknowledgeNagFindings });
  return { app, stack, template: Template.fromStack(stack) };
}

type Resources = Record<string, { Properties: Record<string, unknown> }>;

function only(
  template: Template,
  type: string,
  props: Record<string, unknown> = {},
): [string, { Properties: Record<string, unknown> }] {
  const matcher = props.Properties ? props : { Properties: Match.objectLike(props) };
  const found = Object.entries(template.findResources(type, matcher) as Resources);
  assert.equal(found.length, 1, `expected one ${type} matching ${JSON.stringify(props)}, found ${found.length}`);
  return found[0]!;
}

/** Every Action string in every policy attached to `roleLogicalId` (inline, default policy, managed). */
function actionsOfRole(template: Template, roleLogicalId: string): string[] {
  const role = template.findResources('AWS::IAM::Role')[roleLogicalId] as { Properties: { Policies?: Array<{ PolicyDocument: { Statement: Array<{ Action: string | string[] }> } }> } };
  const inline = (role.Properties.Policies ?? []).flatMap((p) => p.PolicyDocument.Statement);
  const attached = Object.values(template.findResources('AWS::IAM::Policy') as Resources)
    .filter((p) => JSON.stringify(p.Properties.Roles).includes(`"${roleLogicalId}"`))
    .flatMap((p) => (p.Properties.PolicyDocument as { Statement: Array<{ Action: string | string[] }> }).Statement);
  return [...inline, ...attached].flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
}

const roleId = (s: Synth, role: iam.Role) => s.stack.getLogicalId(role.node.defaultChild as iam.CfnRole);

describe('CDK app (deploy/cdk)', { timeout: 120_000 }, () => {
  const modes = [
    ['secondary-ip', secondaryIp],
    ['route-table', routeTable],
  ] as const;

  for (const [mode, cluster] of modes) {
    describe(`${mode} example (${cluster.clusterName})`, () => {
      const s = synth(cluster);

      it('synthesises offline: no context lookups, no concrete account or region', () => {
        const assembly = s.app.synth();
        assert.equal(assembly.manifest.missing, undefined, 'a lookup would need AWS credentials and network');
        assert.ok(Stack.of(s.stack).resolve(s.stack.region).Ref === 'AWS::Region');
      });

      it('cdk-nag AwsSolutionsChecks: no unacknowledged finding, errors or warnings', () => {
        const report = new AwsSolutionsChecks(s.app).validateScope(s.app);
        assert.deepEqual(report.violations.map((v) => `${v.ruleName} (${v.severity}) at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`), []);
      });

      it('each acknowledgment has a reason and stands for a finding that really occurs; nothing else is hidden', () => {
        const bare = synth(cluster, false);
        const findings = new AwsSolutionsChecks(bare.app).validateScope(bare.app).violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} @ ${r.constructPath}`));
        // A finding is reported on the construct's CFN resource (or a child of it); the
        // acknowledgment sits on the construct, so compare by path prefix.
        const acknowledged = s.stack.nagAcknowledgments;
        assert.ok(acknowledged.length > 0);
        for (const a of acknowledged) {
          assert.ok(a.reason.length >= 40, `${a.id}: the reason should explain, got ${JSON.stringify(a.reason)}`);
          assert.ok(findings.some((f) => f.startsWith(`${a.id} @ ${a.path}`)), `${a.id} on ${a.path} acknowledges nothing: remove it`);
        }
        for (const f of findings) {
          assert.ok(acknowledged.some((a) => f.startsWith(`${a.id} @ ${a.path}`)), `finding ${f} is neither fixed nor acknowledged`);
        }
      });

      it(`tags both DB ENIs with ${clusterTagKey}, attaches each as its instance's primary interface`, () => {
        const enis = Object.entries(s.template.findResources('AWS::EC2::NetworkInterface') as Resources);
        assert.equal(enis.length, 2);
        for (const [id, eni] of enis) {
          const tags = eni.Properties.Tags as Array<{ Key: string; Value: string }>;
          assert.deepEqual(tags.find((t) => t.Key === clusterTagKey)?.Value, cluster.clusterName);
          assert.equal(eni.Properties.SourceDestCheck, mode === 'secondary-ip', `${id}: source/destination check ${mode === 'secondary-ip' ? 'on' : 'off'}`);
          only(s.template, 'AWS::EC2::Instance', { NetworkInterfaces: [{ DeviceIndex: '0', NetworkInterfaceId: { Ref: id } }] });
        }
        assert.equal(Object.keys(s.template.findResources('AWS::EC2::Instance')).length, 3, 'db-a, db-b and the witness');
      });

      it('instances: IMDSv2 only with one hop, encrypted volumes, detailed monitoring, termination protection', () => {
        for (const [id, instance] of Object.entries(s.template.findResources('AWS::EC2::Instance') as Resources)) {
          assert.deepEqual(instance.Properties.MetadataOptions, { HttpEndpoint: 'enabled', HttpPutResponseHopLimit: 1, HttpTokens: 'required' }, id);
          const volumes = instance.Properties.BlockDeviceMappings as Array<{ Ebs: { Encrypted: boolean } }>;
          assert.equal(volumes[0]!.Ebs.Encrypted, true, id);
          assert.equal(instance.Properties.Monitoring, true, id);
          assert.equal(instance.Properties.DisableApiTermination, true, id);
        }
      });

      it('the agent role carries the deploy/iam policy document itself; the witness role has no EC2 action', () => {
        const agentRole = s.template.findResources('AWS::IAM::Role')[roleId(s, s.stack.agentRole)] as { Properties: { Policies: Array<{ PolicyName: string; PolicyDocument: unknown }> } };
        const inline = agentRole.Properties.Policies.find((p) => p.PolicyName === 'pgvip-vip')!.PolicyDocument;
        // Rendered with the stack's own region and account tokens, which synthesise to Ref AWS::Region
        // and Ref AWS::AccountId: the deployed document is the deploy/iam file with its placeholders filled.
        const params = { region: s.stack.region, account: s.stack.account, cluster: cluster.clusterName, ...(cluster.mode === 'route-table' ? { routeTableIds: cluster.routeTableIds } : {}) };
        const rendered = iam.PolicyDocument.fromJson(renderAgentPolicy(mode, params)).toJSON();
        assert.deepEqual(inline, JSON.parse(JSON.stringify(s.stack.resolve(rendered))));
        // (CloudFormation output writes a one-element Action list as a plain string.)
        const statements = (inline as { Statement: Array<{ Sid: string; Action: string | string[] }> }).Statement;
        const sids = statements.map((st) => [st.Sid, [st.Action].flat()]);
        assert.deepEqual(sids, loadPolicyTemplate(mode).Statement.map((st) => [st.Sid, st.Action]));

        const witnessActions = actionsOfRole(s.template, roleId(s, s.stack.witnessRole));
        assert.deepEqual(witnessActions.filter((a) => a.startsWith('ec2:')), []);
        for (const role of [s.stack.agentRole, s.stack.witnessRole]) {
          assert.ok(actionsOfRole(s.template, roleId(s, role)).includes('secretsmanager:GetSecretValue'), 'every member reads the cluster key');
        }
      });

      it('security groups: PostgreSQL from the clients and the other node; agent and witness ports only among the three; nothing from anywhere', () => {
        const dbSg = s.stack.getLogicalId(s.stack.dbSecurityGroup.node.defaultChild as never);
        const witnessSg = s.stack.getLogicalId(s.stack.witnessSecurityGroup.node.defaultChild as never);
        const rules: string[] = [];
        for (const [id, sg] of Object.entries(s.template.findResources('AWS::EC2::SecurityGroup') as Resources)) {
          const ingress = (sg.Properties.SecurityGroupIngress ?? []) as Array<{
            CidrIp?: string;
            SourceSecurityGroupId?: string;
            FromPort: number;
            ToPort: number;
          }>;
          for (const r of ingress) {
            rules.push(`${id} ${r.FromPort}-${r.ToPort} from ${r.CidrIp ?? r.SourceSecurityGroupId}`);
          }
        }
        for (const r of Object.values(s.template.findResources('AWS::EC2::SecurityGroupIngress') as Resources)) {
          const p = r.Properties as { GroupId: { 'Fn::GetAtt': [string] }; SourceSecurityGroupId: { 'Fn::GetAtt': [string] }; FromPort: number; ToPort: number };
          rules.push(`${p.GroupId['Fn::GetAtt'][0]} ${p.FromPort}-${p.ToPort} from ${p.SourceSecurityGroupId['Fn::GetAtt'][0]}`);
        }
        const pg = `${ports.postgres}-${ports.postgres}`;
        const expected = [
          ...cluster.clients.cidrBlocks.map((b) => `${dbSg} ${pg} from ${b}`),
          ...cluster.clients.securityGroupIds.map((g) => `${dbSg} ${pg} from ${g}`),
          `${dbSg} ${pg} from ${dbSg}`,
          `${dbSg} ${ports.agent}-${ports.agent} from ${dbSg}`,
          `${dbSg} ${ports.agent}-${ports.agent} from ${witnessSg}`,
          `${witnessSg} ${ports.witness}-${ports.witness} from ${dbSg}`,
        ];
        assert.deepEqual(rules.sort(), expected.sort());
        assert.ok(!rules.some((r) => r.endsWith('from 0.0.0.0/0')));
      });

      it('the cluster key is a generated 64-hex-digit secret, fetched at boot into /etc/pgvip/<cluster>.key with mode 0600', () => {
        const [, secret] = only(s.template, 'AWS::SecretsManager::Secret');
        const generate = secret.Properties.GenerateSecretString as {
          PasswordLength: number;
          ExcludeCharacters: string;
          ExcludeUppercase: boolean;
          ExcludePunctuation: boolean;
          IncludeSpace: boolean;
        };
        assert.equal(generate.PasswordLength, 64);
        // What remains of the default alphabet must be exactly the hex digits.
        const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
        const allowed = [...alphabet].filter((ch) => !generate.ExcludeCharacters.includes(ch)).join('');
        assert.deepEqual([allowed, generate.ExcludeUppercase, generate.ExcludePunctuation, generate.IncludeSpace], ['abcdef0123456789', true, true, false]);
        const userData = JSON.stringify(s.stack.resolve(s.stack.instances.dbA.userData));
        assert.match(userData, /umask 077; aws secretsmanager get-secret-value/);
        assert.match(userData, new RegExp(`/etc/pgvip/${cluster.clusterName}\\.key`));
      });

      if (mode === 'secondary-ip') {
        it("starts the VIP as a secondary address of db-a's ENI, and only there", () => {
          const [, dbA] = only(s.template, 'AWS::EC2::NetworkInterface', { PrivateIpAddresses: Match.anyValue() });
          assert.deepEqual(dbA.Properties.PrivateIpAddresses, [
            { PrivateIpAddress: cluster.dbA.address, Primary: true },
            { PrivateIpAddress: cluster.vip, Primary: false },
          ]);
          assert.deepEqual(Object.keys(s.template.findResources('AWS::EC2::Route')), []);
        });
      } else if (cluster.mode === 'route-table') {
        it("puts the VIP's /32 route into every listed route table, pointing at db-a's ENI", () => {
          const dbAEni = s.stack.getLogicalId(s.stack.networkInterfaces.dbA);
          const routes = Object.values(s.template.findResources('AWS::EC2::Route') as Resources).map((r) => r.Properties);
          assert.deepEqual(
            routes.map((r) => r.RouteTableId).sort(),
            [...cluster.routeTableIds].sort(),
          );
          for (const r of routes) assert.deepEqual([r.DestinationCidrBlock, r.NetworkInterfaceId], [`${cluster.vip}/32`, { Ref: dbAEni }]);
          assert.equal(JSON.stringify(s.template.toJSON()).includes(`"PrivateIpAddress":"${cluster.vip}"`), false, 'the VIP is not an ENI address in this mode');
        });
      }
    });
  }

  it('refuses cluster descriptions that cannot work, naming the field and the reason', () => {
    const base = JSON.parse(JSON.stringify(secondaryIp)) as Record<string, unknown> & typeof secondaryIp;
    const cases: Array<[string, unknown, RegExp]> = [
      ['DB nodes in two subnets in secondary-ip mode', { ...base, dbB: routeTable.dbB }, /secondary-ip mode needs both DB nodes in one subnet.*\n.*at dbB\.subnet\.id/],
      ['a VIP outside the DB subnet', { ...base, vip: '10.0.9.9' }, /must be a free address of the DB subnet.*\n.*at vip/],
      ['a VIP inside the VPC in route-table mode', { ...routeTable, vip: '10.0.5.5' }, /must lie outside the VPC CIDR/],
      ['the witness in a DB node\'s AZ', { ...base, witness: { ...base.witness, subnet: base.dbA.subnet, address: '10.0.1.20' } }, /availability zone of its own/],
      ['PostgreSQL open to the internet', { ...base, clients: { cidrBlocks: ['0.0.0.0/0'] } }, /must not be open to the whole internet/],
      ['no clients at all', { ...base, clients: {} }, /at least one client/],
      ['a misspelt key', { ...base, clusterNmae: 'x' }, /clusterNmae/],
    ];
    for (const [what, raw, expected] of cases) assert.throws(() => parseClusterConfig(raw), expected, what);
  });
});
