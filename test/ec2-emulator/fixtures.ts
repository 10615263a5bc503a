// Shared test data and clients for the emulator's tests: one VPC in 198.18.0.0/15 (a range reserved
// for test networks), two DB nodes' ENIs in the same subnet with the VIP 198.18.1.100 on db-a,
// a third-party ENI of another cluster, and route tables for the cross-AZ mode.
import { EC2Client } from '@aws-sdk/client-ec2';
import type { Ec2EmulatorConfig } from './index.js';

// The SDK must never reach for a real IMDS (or real credentials) from a test.
process.env.AWS_EC2_METADATA_DISABLED = 'true';

export const region = 'us-east-1';
export const accountId = '123456789012';
export const vip = '198.18.1.100';
/** A /32 "overlay" VIP outside the VPC CIDR, for route-table mode. */
export const overlayVip = '198.19.0.10';
export const dbA = { instanceId: 'i-0aaa', eni: 'eni-0aaa', primaryIp: '198.18.1.10', mac: '02:00:00:00:0a:01' } as const;
export const dbB = { instanceId: 'i-0bbb', eni: 'eni-0bbb', primaryIp: '198.18.1.11', mac: '02:00:00:00:0b:01' } as const;
export const other = { instanceId: 'i-0ddd', eni: 'eni-0ddd', primaryIp: '198.18.1.20' } as const;

export function baseConfig(overrides: Partial<Ec2EmulatorConfig> = {}): Ec2EmulatorConfig {
  return {
    region,
    accountId,
    vpcs: [{ id: 'vpc-0a1', cidrBlock: '198.18.0.0/16' }],
    subnets: [
      { id: 'subnet-0a1', vpcId: 'vpc-0a1', cidrBlock: '198.18.1.0/24', availabilityZone: 'us-east-1a' },
      { id: 'subnet-0b2', vpcId: 'vpc-0a1', cidrBlock: '198.18.2.0/24', availabilityZone: 'us-east-1b' },
    ],
    networkInterfaces: [
      { id: dbA.eni, instanceId: dbA.instanceId, subnetId: 'subnet-0a1', macAddress: dbA.mac, privateIpAddress: dbA.primaryIp, secondaryPrivateIpAddresses: [vip], tags: { 'pgvip:cluster': 'main', Name: 'db-a' } },
      { id: dbB.eni, instanceId: dbB.instanceId, subnetId: 'subnet-0a1', macAddress: dbB.mac, privateIpAddress: dbB.primaryIp, tags: { 'pgvip:cluster': 'main', Name: 'db-b' } },
      { id: other.eni, instanceId: other.instanceId, subnetId: 'subnet-0a1', privateIpAddress: other.primaryIp, tags: { 'pgvip:cluster': 'other' }, ipv4AddressesMax: 2 },
    ],
    routeTables: [
      { id: 'rtb-0a1', vpcId: 'vpc-0a1', main: true, routes: [{ destinationCidrBlock: `${overlayVip}/32`, networkInterfaceId: dbA.eni }], tags: { 'pgvip:cluster': 'main' } },
      { id: 'rtb-0b2', vpcId: 'vpc-0a1', subnetIds: ['subnet-0b2'] },
    ],
    ...overrides,
  };
}

export interface ClientOptions {
  readonly accessKeyId?: string;
  readonly maxAttempts?: number;
  readonly requestTimeoutMs?: number;
}

export function ec2Client(endpoint: string, options: ClientOptions = {}): EC2Client {
  return new EC2Client({
    region,
    endpoint,
    credentials: { accessKeyId: options.accessKeyId ?? 'AKIDTESTDEFAULT0', secretAccessKey: 'not-checked-by-the-emulator' },
    maxAttempts: options.maxAttempts ?? 1,
    requestHandler: { requestTimeout: options.requestTimeoutMs ?? 5_000, connectionTimeout: 2_000 },
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5_000, what = 'condition'): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}
