// The CDK app: `npx cdk synth -c config=examples/orders-secondary-ip.json` (from deploy/cdk).
// The cluster is described by a JSON file (see lib/cluster-config.ts and docs/deploy.md); cdk-nag's
// AWS Solutions checks run at every synth and fail it on any finding not acknowledged with a reason.
import path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadClusterConfig } from '../lib/cluster-config.js';
import { PgvipClusterStack } from '../lib/pgvip-stack.js';

const app = new App();
const configFile = app.node.tryGetContext('config') as string | undefined;
if (!configFile) throw new Error('pass the cluster description: npx cdk synth -c config=path/to/cluster.json (examples/ has three)');
const cluster = loadClusterConfig(path.resolve(configFile));
new PgvipClusterStack(app, `pgvip-${cluster.clusterName}`, {
  cluster,
  description: `pgvip cluster ${cluster.clusterName} (${cluster.mode} mode): ${cluster.dbC === undefined ? 'two' : 'three'} PostgreSQL nodes and a witness`,
  // The account and region come from the CLI's credentials at deploy time; synth needs neither.
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
