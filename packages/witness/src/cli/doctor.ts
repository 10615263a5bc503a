// `pgvip doctor`: run on a database node before the agent, to find what would stop a failover while
// nothing is at stake. It proves what can be proven without acting — IMDS answers, the ENI and the
// route tables exist, the VIP fits the subnet, and each IAM permission whose API has a DryRun
// (DryRunOperation = allowed, UnauthorizedOperation = missing) — and says plainly what cannot:
// AssignPrivateIpAddresses and UnassignPrivateIpAddresses have no DryRun in the EC2 API. Last, it asks
// the node's PostgreSQL whether the commit guard is loaded and active (doctor-postgres.ts), and, when the
// cluster names an etcd cluster (quorum.etcd), checks its endpoints, TLS, leader and permissions (doctor-etcd.ts).
import type * as Ec2Sdk from '@aws-sdk/client-ec2';
import type { AgentConfig } from '@pgvip/shared';
import { archiveCheck } from './doctor-archive.js';
import { etcdChecks } from './doctor-etcd.js';
import { commitGuardCheck } from './doctor-postgres.js';
import { tlsCheck } from './doctor-tls.js';
import { ImdsReader } from './imds.js';
import { awsReservedReason, cidrContains, parseCidr, type Cidr } from './ipv4.js';

export type CheckStatus = 'ok' | 'fail' | 'note';

export interface Check {
  readonly status: CheckStatus;
  /** What was checked, in a few words, e.g. `IAM ec2:ReplaceRoute`. */
  readonly title: string;
  /** What was found. */
  readonly detail: string;
  /** For a failure: what to do about it. */
  readonly fix?: string;
}

export interface DoctorOptions {
  readonly config: AgentConfig;
  readonly imdsUrl: string;
  /** EC2 endpoint override (else the SDK's: AWS_ENDPOINT_URL_EC2 or the region's). */
  readonly ec2Endpoint?: string;
  readonly timeoutMs: number;
}

interface ImdsFacts {
  readonly instanceId?: string;
  readonly interfaceId?: string;
  readonly region?: string;
  readonly subnetCidr?: string;
  readonly vpcCidrs?: readonly string[];
}

type Ec2Outcome<T> =
  | { readonly kind: 'ok'; readonly value: T }
  | { readonly kind: 'allowed' }
  | { readonly kind: 'denied'; readonly message: string }
  | { readonly kind: 'credentials'; readonly message: string }
  | { readonly kind: 'error'; readonly name: string; readonly message: string };

const policyFileOf = { 'secondary-ip': 'deploy/iam/agent-secondary-ip.json', 'route-table': 'deploy/iam/agent-route-table.json' } as const;

export async function runDoctor(options: DoctorOptions): Promise<Check[]> {
  const checks = await awsChecks(options);
  checks.push(await commitGuardCheck(options.config, options.timeoutMs));
  checks.push(await archiveCheck(options.config, options.timeoutMs));
  const tls = await tlsCheck(options.config);
  if (tls !== null) checks.push(tls);
  checks.push(...(await etcdChecks(options.config.cluster, options.config.self, options.timeoutMs)));
  return checks;
}

async function awsChecks(options: DoctorOptions): Promise<Check[]> {
  const { config } = options;
  const cluster = config.cluster;
  const node = cluster.nodes.find((n) => n.id === config.self)!;
  const vip = cluster.vip;
  const checks: Check[] = [];
  const add = (status: CheckStatus, title: string, detail: string, fix?: string) =>
    checks.push({ status, title, detail, ...(fix === undefined ? {} : { fix }) });
  const imdsNeeded = vip.discovery === 'imds';

  // ---- IMDSv2 ------------------------------------------------------------------------------------
  const imds = new ImdsReader(options.imdsUrl, options.timeoutMs);
  let facts: ImdsFacts = {};
  try {
    await imds.token();
    add('ok', 'IMDSv2', `session token issued by ${imds.endpoint}`);
    facts = await readImdsFacts(imds, node.vip?.eniId);
    const where = [`instance ${facts.instanceId ?? '?'}`, `ENI ${facts.interfaceId ?? '?'}`, `region ${facts.region ?? '?'}`, `subnet ${facts.subnetCidr ?? '?'}`];
    const missing = ['instanceId', 'interfaceId', 'region', 'subnetCidr'].filter((k) => facts[k as keyof ImdsFacts] === undefined);
    if (missing.length === 0) add('ok', 'IMDS identity', where.join(', '));
    else add(imdsNeeded ? 'fail' : 'note', 'IMDS identity', `${where.join(', ')}; IMDS did not tell ${missing.join(', ')}`, imdsNeeded ? 'set the missing values in the config (nodes[].vip.eniId, vip.region, vip.prefixLength), or check the instance metadata options' : undefined);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    if (imdsNeeded) {
      add('fail', 'IMDSv2', `no answer from ${imds.endpoint}: ${why}`,
        'the agent discovers instance, ENI, region and subnet through IMDSv2 (vip.discovery: imds). Enable it: aws ec2 modify-instance-metadata-options --instance-id <id> --http-endpoint enabled --http-tokens required; ' +
          'in a container also raise --http-put-response-hop-limit to 2. Or configure them and set vip.discovery: config');
    } else {
      add('note', 'IMDSv2', `no answer from ${imds.endpoint} (${why}); vip.discovery is "config", so the agent does not need it (its AWS credentials must then come from elsewhere than the instance profile)`);
    }
  }

  const instanceId = facts.instanceId ?? node.vip?.instanceId;
  const configured = node.vip?.instanceId;
  if (configured !== undefined && facts.instanceId !== undefined && configured !== facts.instanceId) {
    add('fail', 'instance', `the config gives ${node.id} instance ${configured}, but this is ${facts.instanceId}`, `run doctor on ${node.id}'s instance, or correct self / nodes[].vip.instanceId`);
  }
  const eniId = node.vip?.eniId ?? facts.interfaceId;
  const region = vip.region ?? facts.region;
  if (region === undefined) {
    add('fail', 'region', 'unknown: vip.region is not set and IMDS did not answer', 'set cluster.vip.region, e.g. eu-west-1');
    return checks;
  }
  if (eniId === undefined) add('fail', 'ENI', 'unknown: nodes[].vip.eniId is not set and IMDS did not answer', `set ${node.id}'s vip.eniId, e.g. eni-0123456789abcdef0`);

  // ---- EC2 ---------------------------------------------------------------------------------------
  // Loaded here only: the SDK takes a good part of a second to import, which the other commands
  // of the CLI should not pay.
  const sdk = await import('@aws-sdk/client-ec2');
  const ec2 = new sdk.EC2Client({
    region,
    ...(options.ec2Endpoint === undefined ? {} : { endpoint: options.ec2Endpoint }),
    maxAttempts: 2,
    requestHandler: {
      requestTimeout: options.timeoutMs,
      connectionTimeout: options.timeoutMs,
      throwOnRequestTimeout: true,
    },
  });
  const call = async <T>(send: () => Promise<T>): Promise<Ec2Outcome<T>> => {
    try {
      return { kind: 'ok', value: await send() };
    } catch (err) {
      const e = err as { name?: string; message?: string };
      const name = e.name ?? 'Error';
      const message = e.message ?? String(err);
      if (name === 'DryRunOperation') return { kind: 'allowed' };
      if (name === 'UnauthorizedOperation') return { kind: 'denied', message };
      if (name === 'CredentialsProviderError' || name === 'AuthFailure' || name === 'InvalidClientTokenId' || name === 'UnrecognizedClientException') return { kind: 'credentials', message: `${name}: ${message}` };
      return { kind: 'error', name, message };
    }
  };
  const policyFile = policyFileOf[vip.mode];

  try {
    // DescribeNetworkInterfaces first: it also tells whether there are working credentials at all.
    const describeAllowed = await call(() => ec2.send(new sdk.DescribeNetworkInterfacesCommand({ DryRun: true })));
    if (describeAllowed.kind === 'credentials') {
      add('fail', 'AWS credentials', describeAllowed.message.split('\n')[0]!, 'attach an IAM role (instance profile) to the instance; pgvip uses the default AWS credential chain');
      return checks;
    }
    permissionCheck(add, 'ec2:DescribeNetworkInterfaces', describeAllowed, policyFile, 'on *');

    let eniSubnetCidr: Cidr | undefined;
    if (eniId !== undefined && describeAllowed.kind === 'allowed') {
      const found = await call(() =>
        ec2.send(new sdk.DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [eniId] })),
      );
      const eni = found.kind === 'ok' ? found.value.NetworkInterfaces?.[0] : undefined;
      if (eni === undefined) {
        const why = found.kind === 'error' || found.kind === 'denied' ? `${'name' in found ? `${found.name}: ` : ''}${found.message}` : 'not found';
        add('fail', 'ENI', `${eniId}: ${why}`, `check ${node.id}'s vip.eniId, or that IMDS describes the right interface`);
      } else {
        const attachedTo = eni.Attachment?.InstanceId;
        if (instanceId !== undefined && attachedTo !== instanceId) {
          add('fail', 'ENI', `${eniId} is attached to ${attachedTo ?? 'no instance'}, not to this instance ${instanceId}`, `set ${node.id}'s vip.eniId to an interface of this instance`);
        } else {
          add('ok', 'ENI', `${eniId}: attached to ${attachedTo ?? '?'}, subnet ${eni.SubnetId ?? '?'}, primary address ${eni.PrivateIpAddress ?? '?'}`);
        }
        const tag = eni.TagSet?.find((t) => t.Key === 'pgvip:cluster')?.Value;
        if (vip.mode === 'secondary-ip') {
          if (tag === cluster.name) add('ok', 'ENI tag', `pgvip:cluster=${tag}: matches the condition of ${policyFile}`);
          else if (tag === undefined) add('note', 'ENI tag', `${eniId} has no pgvip:cluster tag; the policy in ${policyFile} only lets the agent move addresses on ENIs tagged pgvip:cluster=${cluster.name}`, `aws ec2 create-tags --resources ${eniId} --tags Key=pgvip:cluster,Value=${cluster.name}`);
          else add('fail', 'ENI tag', `${eniId} is tagged pgvip:cluster=${tag}, not ${cluster.name}`, `correct the tag (aws ec2 create-tags --resources ${eniId} --tags Key=pgvip:cluster,Value=${cluster.name}) or the cluster name`);
        } else if (eni.SourceDestCheck !== false) {
          add('fail', 'ENI source/dest check', `${eniId} has source/destination checking on, so it drops traffic addressed to the VIP`, `aws ec2 modify-network-interface-attribute --network-interface-id ${eniId} --no-source-dest-check`);
        } else {
          add('ok', 'ENI source/dest check', `off on ${eniId}, as route-table mode needs`);
        }
        if (facts.subnetCidr === undefined && vip.mode === 'secondary-ip' && vip.prefixLength !== undefined && eni.PrivateIpAddress !== undefined) {
          eniSubnetCidr = parseCidr(`${eni.PrivateIpAddress}/${vip.prefixLength}`);
        }
      }
    }

    if (vip.mode === 'secondary-ip') {
      const subnet = facts.subnetCidr === undefined ? eniSubnetCidr : parseCidr(facts.subnetCidr);
      subnetChecks(add, vip.address, vip.prefixLength, subnet);
      if (describeAllowed.kind === 'allowed') {
        const holder = await call(() => ec2.send(new sdk.DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'addresses.private-ip-address', Values: [vip.address] }] })));
        if (holder.kind === 'ok') {
          const held = holder.value.NetworkInterfaces?.[0];
          const who = held === undefined ? 'on no interface yet (the first promotion assigns it)' : `on ${held.NetworkInterfaceId}${held.NetworkInterfaceId === eniId ? ' (this node)' : ` (instance ${held.Attachment?.InstanceId ?? '?'})`}`;
          add('ok', 'VIP placement', `${vip.address} is ${who}`);
        }
      }
      add('note', 'IAM ec2:AssignPrivateIpAddresses, ec2:UnassignPrivateIpAddresses',
        'cannot be proven without acting: these EC2 calls have no DryRun, and trying them would move the VIP. They are first used when this node is promoted',
        `make sure the instance role's policy allows both on this cluster's ENIs, as ${policyFile} does`);
    } else {
      const vpcCidrs = (facts.vpcCidrs ?? []).map(parseCidr).filter((c): c is Cidr => c !== undefined);
      const inside = vpcCidrs.find((c) => cidrContains(c, vip.address));
      if (inside !== undefined) add('note', 'VIP address', `${vip.address} lies inside the VPC CIDR ${inside.text}; route-table mode is meant for an address outside it, which no subnet's local route can claim`);
      await routeTableChecks(add, call, sdk, ec2, {
        vip: vip.address,
        eniId,
        routeTableIds: vip.routeTableIds,
        policyFile,
        region,
      });
    }
  } finally {
    ec2.destroy();
  }
  return checks;
}

async function readImdsFacts(imds: ImdsReader, configuredEni: string | undefined): Promise<ImdsFacts> {
  const instanceId = await imds.get('instance-id');
  const region = await imds.get('placement/region');
  const primaryMac = await imds.get('mac');
  // The ENI the config names may be a secondary interface of the instance: find its MAC.
  let mac = primaryMac;
  if (configuredEni !== undefined) {
    const macs = ((await imds.get('network/interfaces/macs/')) ?? '').split('\n').map((m) => m.trim().replace(/\/$/, '')).filter(Boolean);
    for (const candidate of macs) {
      if ((await imds.get(`network/interfaces/macs/${candidate}/interface-id`)) === configuredEni) mac = candidate;
    }
  }
  if (mac === undefined) return { ...(instanceId && { instanceId }), ...(region && { region }) };
  const base = `network/interfaces/macs/${mac}`;
  const interfaceId = await imds.get(`${base}/interface-id`);
  const subnetCidr = await imds.get(`${base}/subnet-ipv4-cidr-block`);
  const vpcCidrs = (await imds.get(`${base}/vpc-ipv4-cidr-blocks`))?.split('\n').map((c) => c.trim()).filter(Boolean);
  return {
    ...(instanceId && { instanceId }),
    ...(region && { region }),
    ...(interfaceId && { interfaceId }),
    ...(subnetCidr && { subnetCidr }),
    ...(vpcCidrs && { vpcCidrs }),
  };
}

type Add = (status: CheckStatus, title: string, detail: string, fix?: string) => void;

function permissionCheck(
  add: Add,
  action: string,
  outcome: Ec2Outcome<unknown>,
  policyFile: string,
  scope: string,
): void {
  if (outcome.kind === 'allowed' || outcome.kind === 'ok') {
    add('ok', `IAM ${action}`, `allowed ${scope} (proven with DryRun)`);
  } else if (outcome.kind === 'denied') {
    add('fail', `IAM ${action}`, `MISSING: the instance role may not call ${action} ${scope}`, `add ${action} to the instance role's policy (see ${policyFile})`);
  } else {
    add('fail', `IAM ${action}`, `could not be checked: ${outcome.kind === 'error' ? `${outcome.name}: ` : ''}${outcome.message}`, 'check that the instance reaches the EC2 API endpoint of its region (a VPC endpoint or a NAT route)');
  }
}

function subnetChecks(add: Add, address: string, prefixLength: number | undefined, subnet: Cidr | undefined): void {
  if (subnet === undefined) {
    add('fail', 'VIP in subnet', `cannot tell: no subnet CIDR from IMDS or the config`, 'set vip.prefixLength, or let the agent read the subnet from IMDS');
    return;
  }
  if (!cidrContains(subnet, address)) {
    add('fail', 'VIP in subnet', `${address} is outside this node's subnet ${subnet.text}: EC2 cannot assign it to the ENI`, `choose a free address inside ${subnet.text}, or use vip.mode: route-table for an address outside the VPC`);
    return;
  }
  const reserved = awsReservedReason(subnet, address);
  if (reserved !== undefined) {
    add('fail', 'VIP in subnet', `${address} is ${reserved} of ${subnet.text}`, `choose another free address inside ${subnet.text}`);
    return;
  }
  add('ok', 'VIP in subnet', `${address} is inside ${subnet.text}`);
  if (prefixLength !== undefined && prefixLength !== subnet.prefixLength) {
    add('fail', 'VIP prefix length', `vip.prefixLength is ${prefixLength} but the subnet is /${subnet.prefixLength}`, `set vip.prefixLength: ${subnet.prefixLength}, or remove it to read it from IMDS`);
  }
}

interface RouteContext {
  readonly vip: string;
  readonly eniId: string | undefined;
  readonly routeTableIds: readonly string[];
  readonly policyFile: string;
  readonly region: string;
}

async function routeTableChecks(
  add: Add,
  call: <T>(send: () => Promise<T>) => Promise<Ec2Outcome<T>>,
  sdk: typeof Ec2Sdk,
  ec2: Ec2Sdk.EC2Client,
  ctx: RouteContext,
): Promise<void> {
  const destination = `${ctx.vip}/32`;
  const describeAllowed = await call(() => ec2.send(new sdk.DescribeRouteTablesCommand({ DryRun: true })));
  permissionCheck(add, 'ec2:DescribeRouteTables', describeAllowed, ctx.policyFile, 'on *');

  // Per table, so that a denial names the table to add to the policy.
  const target = ctx.eniId ?? 'eni-00000000000000000';
  const createAllowed = new Map<string, boolean>();
  for (const [action, Command] of [['ec2:ReplaceRoute', sdk.ReplaceRouteCommand], ['ec2:CreateRoute', sdk.CreateRouteCommand]] as const) {
    const denied: string[] = [];
    const unknown: string[] = [];
    for (const id of ctx.routeTableIds) {
      const outcome = await call(() =>
        ec2.send(new Command({
          RouteTableId: id,
          DestinationCidrBlock: destination,
          NetworkInterfaceId: target,
          DryRun: true,
        })),
      );
      // 'ok' would mean an endpoint that ignored DryRun and acted: allowed, too.
      const allowed = outcome.kind === 'allowed' || outcome.kind === 'ok';
      if (action === 'ec2:CreateRoute') createAllowed.set(id, allowed);
      if (outcome.kind === 'denied') denied.push(id);
      else if (outcome.kind === 'error' || outcome.kind === 'credentials') unknown.push(`${id} (${outcome.kind === 'error' ? `${outcome.name}: ` : ''}${outcome.message})`);
    }
    if (denied.length === 0 && unknown.length === 0) {
      add('ok', `IAM ${action}`, `allowed on ${ctx.routeTableIds.join(', ')} (proven with DryRun)`);
    }
    if (denied.length > 0) {
      add('fail', `IAM ${action}`, `MISSING on ${denied.join(', ')}: the instance role may not call ${action} there`,
        `allow ${action} on ${denied.map((id) => `arn:aws:ec2:${ctx.region}:<account>:route-table/${id}`).join(', ')} (see ${ctx.policyFile})`);
    }
    if (unknown.length > 0) add('fail', `IAM ${action}`, `could not be checked on ${unknown.join('; ')}`, 'check the route table ids in vip.routeTableIds');
  }

  if (describeAllowed.kind !== 'allowed') return;
  for (const id of ctx.routeTableIds) {
    const found = await call(() => ec2.send(new sdk.DescribeRouteTablesCommand({ RouteTableIds: [id] })));
    const table = found.kind === 'ok' ? found.value.RouteTables?.[0] : undefined;
    if (table === undefined) {
      const why = found.kind === 'error' ? `${found.name}: ${found.message}` : found.kind === 'denied' || found.kind === 'credentials' ? found.message : 'not found';
      add('fail', `route table ${id}`, why, 'check vip.routeTableIds: every id must be a route table of this VPC');
      continue;
    }
    const route = table.Routes?.find((r) => r.DestinationCidrBlock === destination);
    const createCommand = `aws ec2 create-route --route-table-id ${id} --destination-cidr-block ${destination} --network-interface-id ${target}`;
    if (route === undefined) {
      if (createAllowed.get(id)) add('note', `route table ${id}`, `has no route for ${destination} yet; the agent creates it when this node is promoted (CreateRoute is allowed)`, `or create it now: ${createCommand}`);
      else add('fail', `route table ${id}`, `has no route for ${destination}, and the agent may not create one`, createCommand);
      continue;
    }
    const pointsAt = route.NetworkInterfaceId ?? route.InstanceId ?? route.GatewayId ?? '?';
    const state = route.State === 'blackhole' ? ' (blackhole: its target is gone; the next promotion replaces it)' : '';
    add('ok', `route table ${id}`, `${destination} → ${pointsAt}${pointsAt === ctx.eniId ? ' (this node)' : ''}${state}`);
  }
}
