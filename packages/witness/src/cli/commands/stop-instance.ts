// `pgvip failover --stop-old-primary <instance-id>`: before a forced failover, stop the old primary's
// EC2 instance (StopInstances with Force: no clean OS shutdown, which a hung host would not finish),
// so a node that only seemed dead cannot come back as a second writer. The IAM actions
// (ec2:DescribeNetworkInterfaces, ec2:StopInstances; deploy/iam/operator-stop-instance.json) are only
// needed by whoever runs this mode; the witness records the stop in its history with the failover.
//
// The id is the operator's word, typed under pressure: before stopping, EC2 must show that the
// instance holds the old primary's address (its agent.host or postgres.host in the cluster config, as
// the witness reports them) and none of the promoted node's, and it must be neither the instance the
// config gives for another node nor the promoted node's. Stopping the wrong instance would take down
// the node about to become primary, or someone else's server.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type * as Ec2Sdk from '@aws-sdk/client-ec2';
import type { NodeView } from '../api.js';
import { CliError, exitCodes, usageError } from '../errors.js';

/** What EC2 said about the stop; the witness records it with the failover. */
export interface InstanceStop {
  readonly instanceId: string;
  /** The node the operator says runs there (the old primary), when known. */
  readonly node: string | null;
  readonly previousState: string;
  readonly currentState: string;
}

export interface StopOptions {
  readonly instanceId: string;
  readonly node: string | null;
  /** The cluster's nodes as the witness shows them: the old primary (`node`) and the one promoted. */
  readonly nodes: readonly NodeView[];
  /** The node to be promoted (--to, or the witness's choice when it is the only other node). */
  readonly promoted: string | null;
  /** --region, else AWS_REGION / AWS_DEFAULT_REGION. */
  readonly region: string | undefined;
  /** --ec2-endpoint (an emulator, a VPC endpoint); else the region's, or AWS_ENDPOINT_URL_EC2. */
  readonly endpoint: string | undefined;
  readonly timeoutMs: number;
}

const instanceIdPattern = /^i-[0-9a-f]{1,17}$/;

export function checkInstanceId(id: string): string {
  if (!instanceIdPattern.test(id)) {
    throw usageError(`--stop-old-primary ${id}: not an EC2 instance id; give the old primary's, e.g. i-0123456789abcdef0`);
  }
  return id;
}

export async function stopInstanceForced(o: StopOptions): Promise<InstanceStop> {
  const region = o.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (region === undefined || region === '') {
    throw usageError('--stop-old-primary needs the AWS region: pass --region, e.g. --region eu-west-1, or set AWS_REGION');
  }
  // Loaded here only: the SDK takes a good part of a second to import.
  const sdk = await import('@aws-sdk/client-ec2');
  const ec2 = new sdk.EC2Client({
    region,
    ...(o.endpoint === undefined ? {} : { endpoint: o.endpoint }),
    maxAttempts: 3,
    requestHandler: { requestTimeout: o.timeoutMs, connectionTimeout: o.timeoutMs, throwOnRequestTimeout: true },
  });
  try {
    await checkInstanceIsOldPrimary(o, await instanceAddresses(ec2, sdk, o.instanceId));
  } catch (err) {
    ec2.destroy();
    throw err;
  }
  try {
    const reply: Ec2Sdk.StopInstancesCommandOutput = await ec2.send(
      new sdk.StopInstancesCommand({ InstanceIds: [o.instanceId], Force: true }),
    );
    const item = reply.StoppingInstances?.find((i) => i.InstanceId === o.instanceId);
    return {
      instanceId: o.instanceId,
      node: o.node,
      previousState: item?.PreviousState?.Name ?? 'unknown',
      currentState: item?.CurrentState?.Name ?? 'unknown',
    };
  } catch (err) {
    throw new CliError(
      exitCodes.failed,
      `instance ${o.instanceId} was not stopped ${ec2Refusal(err, 'stop it', 'ec2:StopInstances')}; ` +
        'no failover was asked for. Stop it another way, or run the failover without --stop-old-primary',
      'stop-failed',
    );
  } finally {
    ec2.destroy();
  }
}

/** One line for the operator and the witness's history. */
export function describeStop(stop: InstanceStop): string {
  const of = stop.node === null ? '' : ` of ${stop.node}`;
  return `instance ${stop.instanceId}${of} stopped through EC2 with Force (${stop.previousState} → ${stop.currentState})`;
}

/** The code of a refusal to stop an instance that is not (shown to be) the old primary's. */
export const mismatchCode = 'PGVIP_OPERATOR_INSTANCE_MISMATCH';

function mismatch(o: StopOptions, why: string): CliError {
  return new CliError(
    exitCodes.failed,
    `--stop-old-primary ${o.instanceId}: ${why}; nothing was stopped and no failover was asked for. ` +
      'Give the old primary\'s instance id, or stop it another way and run the failover without --stop-old-primary',
    mismatchCode,
  );
}

/** The private IPv4 addresses of every network interface attached to the instance (DescribeNetworkInterfaces). */
async function instanceAddresses(ec2: Ec2Sdk.EC2Client, sdk: typeof Ec2Sdk, instanceId: string): Promise<string[]> {
  try {
    const addresses: string[] = [];
    let token: string | undefined;
    do {
      const page = await ec2.send(
        new sdk.DescribeNetworkInterfacesCommand({
          Filters: [{ Name: 'attachment.instance-id', Values: [instanceId] }],
          ...(token === undefined ? {} : { NextToken: token }),
        }),
      );
      for (const eni of page.NetworkInterfaces ?? []) {
        for (const a of eni.PrivateIpAddresses ?? []) {
          if (a.PrivateIpAddress !== undefined) addresses.push(a.PrivateIpAddress);
        }
      }
      token = page.NextToken;
    } while (token !== undefined && token !== '');
    return addresses;
  } catch (err) {
    throw new CliError(
      exitCodes.failed,
      `--stop-old-primary ${instanceId}: could not check which addresses the instance holds ` +
        `${ec2Refusal(err, 'look', 'ec2:DescribeNetworkInterfaces')}; nothing was stopped and no failover was asked for`,
      'stop-failed',
    );
  }
}

/** A node's IPv4 addresses: its hosts that are addresses, and what its host names resolve to here. */
async function addressesOf(node: NodeView): Promise<string[]> {
  const out = new Set<string>();
  for (const host of node.hosts) {
    if (isIP(host) === 4) {
      out.add(host);
      continue;
    }
    const found = await lookup(host, { all: true, family: 4 }).catch(() => []);
    for (const f of found) out.add(f.address);
  }
  return [...out];
}

/** Refuses (PGVIP_OPERATOR_INSTANCE_MISMATCH) unless EC2's view of the instance makes it the old primary's. */
export async function checkInstanceIsOldPrimary(o: StopOptions, held: readonly string[]): Promise<void> {
  const old = o.nodes.find((n) => n.node === o.node);
  if (o.node === null || old === undefined) {
    throw mismatch(o, 'the witness knows no primary of the cluster, so there is no old primary to check the instance against');
  }
  if (!Array.isArray(old.hosts)) {
    throw mismatch(o, 'the witness does not report where its nodes are (it is older than this pgvip); upgrade the witness');
  }
  for (const n of o.nodes) {
    if (n.node !== old.node && n.instanceId === o.instanceId) {
      throw mismatch(o, `the cluster config gives it as ${n.node}'s instance${n.node === o.promoted ? ', the node being promoted' : ''}, not the old primary ${old.node}'s`);
    }
  }
  if (old.instanceId !== null && old.instanceId !== o.instanceId) {
    throw mismatch(o, `the cluster config gives the old primary ${old.node}'s instance as ${old.instanceId}`);
  }
  const heldSet = new Set(held);
  for (const n of o.nodes) {
    if (n.node === old.node) continue;
    const shared = (await addressesOf(n)).filter((a) => heldSet.has(a));
    if (shared.length > 0) {
      throw mismatch(o, `EC2 shows it holding ${shared.join(', ')}, an address of ${n.node}${n.node === o.promoted ? ', the node being promoted' : ''}`);
    }
  }
  const mine = await addressesOf(old);
  if (mine.length === 0) {
    throw mismatch(o, `none of the old primary ${old.node}'s hosts (${old.hosts.join(', ')}) is an IPv4 address or resolves to one here, so the instance cannot be checked`);
  }
  if (!mine.some((a) => heldSet.has(a))) {
    const has = held.length === 0 ? 'no network interface in EC2 (is the id right, and in this region?)' : `the addresses ${held.join(', ')}`;
    throw mismatch(o, `it has ${has}, and none is the old primary ${old.node}'s (${mine.join(', ')})`);
  }
}

/**
 * An EC2 call's failure as "(Name: message)", with the IAM action to grant when the credentials were
 * refused (`may` says what they may not do).
 */
function ec2Refusal(err: unknown, may: string, action: string): string {
  const e = err as { name?: string; message?: string };
  const hint = e.name === 'UnauthorizedOperation'
    ? `: these credentials may not ${may}; grant ${action} as in deploy/iam/operator-stop-instance.json`
    : '';
  return `(${e.name ?? 'Error'}: ${e.message ?? String(err)})${hint}`;
}
