// `pgvip failover --stop-old-primary <instance-id>`: before a forced failover, stop the old primary's
// EC2 instance (StopInstances with Force: no clean OS shutdown, which a hung host would not finish),
// so a node that only seemed dead cannot come back as a second writer. The IAM action
// (ec2:StopInstances, deploy/iam/operator-stop-instance.json) is only needed by whoever runs this
// mode; the witness records the stop in its history with the failover.
import type * as Ec2Sdk from '@aws-sdk/client-ec2';
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
    const e = err as { name?: string; message?: string };
    const hint =
      e.name === 'UnauthorizedOperation'
        ? ': these credentials may not stop it; grant ec2:StopInstances as in deploy/iam/operator-stop-instance.json'
        : '';
    throw new CliError(
      exitCodes.failed,
      `instance ${o.instanceId} was not stopped (${e.name ?? 'Error'}: ${e.message ?? String(err)})${hint}; ` +
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
