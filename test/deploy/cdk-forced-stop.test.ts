// Goal: the CDK app grants ec2:StopInstances only when asked (`allowForcedStop: true`): the witness
// role then carries deploy/iam/operator-stop-instance.json itself, filled for the cluster, and the
// instances are tagged with their pgvip:role so the policy reaches the database instances only;
// without the option the witness has no EC2 action. cdk-nag stays clean either way.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadClusterConfig, type ClusterConfig } from '../../deploy/cdk/lib/cluster-config.js';
import { renderStopInstancePolicy, roleTagKey } from '../../deploy/cdk/lib/iam-policies.js';
import { PgvipClusterStack } from '../../deploy/cdk/lib/pgvip-stack.js';

const example = loadClusterConfig(path.resolve(import.meta.dirname, '../../deploy/cdk/examples/orders-secondary-ip.json'));
const outdirs: string[] = [];
after(() => outdirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function synth(cluster: ClusterConfig, acknowledgeNagFindings = true) {
  const outdir = mkdtempSync(path.join(tmpdir(), 'pgvip-cdk-stop-'));
  outdirs.push(outdir);
  const app = new App({ outdir });
  const stack = new PgvipClusterStack(app, `pgvip-${cluster.clusterName}`, { cluster, acknowledgeNagFindings });
  return { app, stack, template: Template.fromStack(stack) };
}

const nagFindings = (app: App): string[] =>
  new AwsSolutionsChecks(app).validateScope(app).violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} @ ${r.constructPath}`));

type Role = { Properties: { Policies?: Array<{ PolicyName: string; PolicyDocument: unknown }> } };

describe('CDK app: allowForcedStop', { timeout: 120_000 }, () => {
  it('off (the default): the witness role has no policy of its own; the instances say what they are', () => {
    const { stack, template } = synth(example);
    const role = template.findResources('AWS::IAM::Role')[stack.getLogicalId(stack.witnessRole.node.defaultChild as iam.CfnRole)] as Role;
    assert.deepEqual(role.Properties.Policies ?? [], []);
    const tags = (id: string) => (template.findResources('AWS::EC2::Instance')[id] as { Properties: { Tags: Array<{ Key: string; Value: string }> } }).Properties.Tags;
    const roleTag = (instance: { node: { defaultChild?: unknown } } | object) =>
      tags(stack.getLogicalId(instance as never)).find((t) => t.Key === roleTagKey)?.Value;
    assert.equal(roleTag(stack.instances.dbA), 'database');
    assert.equal(roleTag(stack.instances.dbB), 'database');
    assert.equal(roleTag(stack.instances.witness), 'witness');
  });

  it('on: the witness role carries the deploy/iam document filled for the cluster, and cdk-nag finds nothing unacknowledged', () => {
    const { stack, template } = synth({ ...example, allowForcedStop: true });
    const role = template.findResources('AWS::IAM::Role')[stack.getLogicalId(stack.witnessRole.node.defaultChild as iam.CfnRole)] as Role;
    const inline = role.Properties.Policies?.find((p) => p.PolicyName === 'pgvip-forced-stop')?.PolicyDocument;
    const params = { region: stack.region, account: stack.account, cluster: example.clusterName };
    const rendered = iam.PolicyDocument.fromJson(renderStopInstancePolicy(params)).toJSON();
    assert.deepEqual(inline, JSON.parse(JSON.stringify(stack.resolve(rendered))));
    type Statement = { Action: string; Resource: unknown; Condition?: unknown };
    const [statement, check] = (inline as { Statement: Statement[] }).Statement;
    assert.equal(statement!.Action, 'ec2:StopInstances');
    assert.deepEqual(statement!.Condition, { StringEquals: { 'aws:ResourceTag/pgvip:cluster': example.clusterName, 'aws:ResourceTag/pgvip:role': 'database' } });
    // The check before the stop: read-only, and IAM has no narrower grant for it than "*".
    assert.deepEqual([check!.Action, check!.Resource, check!.Condition], ['ec2:DescribeNetworkInterfaces', '*', undefined]);
    assert.deepEqual(nagFindings(synth({ ...example, allowForcedStop: true }).app), []);
    // The acknowledgment stands for a real finding: the instance/* resource under its tag conditions.
    const bare = nagFindings(synth({ ...example, allowForcedStop: true }, false).app);
    assert.ok(bare.some((f) => f.startsWith('AwsSolutions-IAM5[Resource::arn:aws:ec2:<AWS::Region>:<AWS::AccountId>:instance/*] @ ') && f.includes('WitnessRole')), bare.join('\n'));
  });
});
