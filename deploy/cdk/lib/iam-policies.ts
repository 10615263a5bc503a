// The agent's IAM policies live as JSON documents in deploy/iam/ (what an operator reads, reviews and
// pastes into the console); this module turns them into concrete documents for one cluster. The CDK
// stack and the tests both load the documents through it, so what is tested against the EC2
// emulator is byte for byte what is deployed: there is no second copy of the policy in code.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type VipMode = 'secondary-ip' | 'route-table';

export interface PolicyStatement {
  readonly Sid?: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Action: readonly string[];
  readonly Resource: string | readonly string[];
  readonly Condition?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

export interface PolicyDocumentJson {
  readonly Version: '2012-10-17';
  readonly Statement: readonly PolicyStatement[];
}

export interface PolicyParameters {
  /** AWS region of the cluster, e.g. eu-west-1 (or a CDK token such as Aws.REGION). */
  readonly region: string;
  /** 12-digit account id (or a CDK token such as Aws.ACCOUNT_ID). */
  readonly account: string;
  /** Cluster name: the value of the `pgvip:cluster` tag on the cluster's network interfaces. */
  readonly cluster: string;
  /** Route-table mode: every route table holding the VIP's /32 route. */
  readonly routeTableIds?: readonly string[];
}

/** The tag that marks the network interfaces a cluster's agents may move the VIP between. */
export const clusterTagKey = 'pgvip:cluster';
/** The tag that says what an instance is: `database` or `witness` (the forced-stop policy keys on it). */
export const roleTagKey = 'pgvip:role';

export const iamDirectory = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../iam');

export function policyTemplatePath(mode: VipMode): string {
  return path.join(iamDirectory, `agent-${mode}.json`);
}

/** The policy document as stored in deploy/iam, placeholders (`<region>`, ...) still in it. */
export function loadPolicyTemplate(mode: VipMode): PolicyDocumentJson {
  return JSON.parse(readFileSync(policyTemplatePath(mode), 'utf8')) as PolicyDocumentJson;
}

/** deploy/iam/operator-stop-instance.json: ec2:StopInstances for `pgvip failover --stop-old-primary`. */
export const stopInstancePolicyPath = path.join(iamDirectory, 'operator-stop-instance.json');

/** The forced-stop policy for one cluster (placeholders filled), for the role of whoever runs the CLI. */
export function renderStopInstancePolicy(params: Omit<PolicyParameters, 'routeTableIds'>): PolicyDocumentJson {
  const template = JSON.parse(readFileSync(stopInstancePolicyPath, 'utf8')) as PolicyDocumentJson;
  return renderTemplate(template, 'forced-stop', params);
}

// A CDK token renders as ${Token[...]} until synthesis; it cannot be checked here, only passed on.
const isToken = (value: string) => value.includes('${Token[');

const formats = {
  region: /^[a-z]{2}(-[a-z]+)+-\d$/,
  account: /^\d{12}$/,
  cluster: /^[a-z0-9-]{1,63}$/,
  routeTableId: /^rtb-[0-9a-f]{8,17}$/,
} as const;

function checked(field: keyof typeof formats, value: string): string {
  if (!isToken(value) && !formats[field].test(value)) {
    throw new Error(`IAM policy parameter ${field}: ${JSON.stringify(value)} does not match ${formats[field]}`);
  }
  return value;
}

/**
 * Fills the placeholders of the mode's policy for one cluster. A Resource entry naming
 * `<route-table-id>` becomes one ARN per route table, so the agent may change routes in exactly the
 * listed tables. Throws when a parameter is missing or malformed, or a placeholder would remain.
 */
export function renderAgentPolicy(mode: VipMode, params: PolicyParameters): PolicyDocumentJson {
  return renderTemplate(loadPolicyTemplate(mode), mode, params);
}

function renderTemplate(template: PolicyDocumentJson, mode: string, params: PolicyParameters): PolicyDocumentJson {
  const values: Record<string, string> = {
    '<region>': checked('region', params.region),
    '<account>': checked('account', params.account),
    '<cluster>': checked('cluster', params.cluster),
  };
  const routeTableIds = (params.routeTableIds ?? []).map((id) => checked('routeTableId', id));
  const fill = (text: string) => text.replace(/<[a-z-]+>/g, (placeholder) => values[placeholder] ?? placeholder);
  const expandResource = (resource: string): string[] => {
    if (!resource.includes('<route-table-id>')) return [fill(resource)];
    if (routeTableIds.length === 0) throw new Error(`the ${mode} policy needs routeTableIds: the route tables that hold the VIP's /32 route`);
    return routeTableIds.map((id) => fill(resource.replace('<route-table-id>', id)));
  };
  const rendered: PolicyDocumentJson = {
    Version: template.Version,
    Statement: template.Statement.map((s) => ({
      ...s,
      Resource: typeof s.Resource === 'string' ? fill(s.Resource) : s.Resource.flatMap(expandResource),
      ...(s.Condition
        ? {
            Condition: Object.fromEntries(
              Object.entries(s.Condition).map(([op, keys]) => [
                op,
                Object.fromEntries(Object.entries(keys).map(([k, v]) => [fill(k), fill(v)])),
              ]),
            ),
          }
        : {}),
    })),
  };
  const leftover = /<[a-z-]+>/.exec(JSON.stringify(rendered));
  if (leftover) throw new Error(`the ${mode} policy still holds the placeholder ${leftover[0]} after rendering`);
  return rendered;
}

/** Every IAM action a policy allows, e.g. for comparing with the calls the agent makes. */
export function allowedActions(policy: PolicyDocumentJson): string[] {
  return policy.Statement.filter((s) => s.Effect === 'Allow').flatMap((s) => s.Action);
}
