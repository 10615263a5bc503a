// Shared test data and clients for the emulator's tests: one VPC in 198.18.0.0/15 (a range reserved
// for test networks), two DB nodes' ENIs in the same subnet with the VIP 198.18.1.100 on db-a,
// a third-party ENI of another cluster, and route tables for the cross-AZ mode.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { EC2Client } from '@aws-sdk/client-ec2';
import { startEc2Emulator, type Ec2Emulator, type Ec2EmulatorConfig } from './index.js';

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
/** When the fixture's ENIs were attached: fixed, so that two emulators answer describes identically. */
export const attachTime = '2026-01-05T10:00:00.000Z';

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
      { id: dbA.eni, instanceId: dbA.instanceId, attachTime, subnetId: 'subnet-0a1', macAddress: dbA.mac, privateIpAddress: dbA.primaryIp, secondaryPrivateIpAddresses: [vip], tags: { 'pgvip:cluster': 'main', Name: 'db-a' } },
      { id: dbB.eni, instanceId: dbB.instanceId, attachTime, subnetId: 'subnet-0a1', macAddress: dbB.mac, privateIpAddress: dbB.primaryIp, tags: { 'pgvip:cluster': 'main', Name: 'db-b' } },
      { id: other.eni, instanceId: other.instanceId, attachTime, subnetId: 'subnet-0a1', privateIpAddress: other.primaryIp, tags: { 'pgvip:cluster': 'other' }, ipv4AddressesMax: 2 },
    ],
    routeTables: [
      { id: 'rtb-0a1', vpcId: 'vpc-0a1', main: true, routes: [{ destinationCidrBlock: `${overlayVip}/32`, networkInterfaceId: dbA.eni }], tags: { 'pgvip:cluster': 'main' } },
      { id: 'rtb-0b2', vpcId: 'vpc-0a1', subnetIds: ['subnet-0b2'] },
    ],
    ...overrides,
  };
}

/** A third DB node in db-a's subnet: secondary-ip mode with three nodes. */
export const dbC = { instanceId: 'i-0ccc', eni: 'eni-0ccc', primaryIp: '198.18.1.12', mac: '02:00:00:00:0c:01' } as const;

/** baseConfig with db-c beside db-a and db-b in one subnet (secondary-ip mode among three nodes). */
export function threeNodeSubnetConfig(overrides: Partial<Ec2EmulatorConfig> = {}): Ec2EmulatorConfig {
  const base = baseConfig();
  const eni = { id: dbC.eni, instanceId: dbC.instanceId, attachTime, subnetId: 'subnet-0a1', macAddress: dbC.mac, privateIpAddress: dbC.primaryIp, tags: { 'pgvip:cluster': 'main', Name: 'db-c' } };
  return { ...base, networkInterfaces: [...base.networkInterfaces!, eni], ...overrides };
}

/**
 * Three DB nodes in three AZs (issue 17's production layout): each in a subnet of its own AZ whose
 * route table holds the overlay VIP's /32, first at db-a's ENI; every DB ENI has source/destination
 * check off. The main table has no VIP route and no subnet. Ids have 8 hex digits, as the IAM policy
 * renderer demands of real ones.
 */
export const threeAz = [
  { id: 'db-a', instanceId: 'i-0a1a0a1a', eni: 'eni-0a1a0a1a', primaryIp: '198.18.1.10', subnetId: 'subnet-0a1', routeTableId: 'rtb-0a1a0a1a', az: 'us-east-1a' },
  { id: 'db-b', instanceId: 'i-0b2b0b2b', eni: 'eni-0b2b0b2b', primaryIp: '198.18.2.10', subnetId: 'subnet-0b2', routeTableId: 'rtb-0b2b0b2b', az: 'us-east-1b' },
  { id: 'db-c', instanceId: 'i-0c3c0c3c', eni: 'eni-0c3c0c3c', primaryIp: '198.18.3.10', subnetId: 'subnet-0c3', routeTableId: 'rtb-0c3c0c3c', az: 'us-east-1c' },
] as const;
export const threeAzMainTable = 'rtb-0d4d0d4d';

export function threeAzConfig(overrides: Partial<Ec2EmulatorConfig> = {}): Ec2EmulatorConfig {
  const route = { destinationCidrBlock: `${overlayVip}/32`, networkInterfaceId: threeAz[0].eni };
  return {
    region,
    accountId,
    vpcs: [{ id: 'vpc-0a1', cidrBlock: '198.18.0.0/16' }],
    subnets: threeAz.map((n, i) => ({ id: n.subnetId, vpcId: 'vpc-0a1', cidrBlock: `198.18.${i + 1}.0/24`, availabilityZone: n.az })),
    networkInterfaces: threeAz.map((n) => ({
      id: n.eni, instanceId: n.instanceId, attachTime, subnetId: n.subnetId, privateIpAddress: n.primaryIp,
      sourceDestCheck: false, tags: { 'pgvip:cluster': 'main', Name: n.id },
    })),
    routeTables: [
      ...threeAz.map((n) => ({ id: n.routeTableId, vpcId: 'vpc-0a1', subnetIds: [n.subnetId], routes: [route] })),
      { id: threeAzMainTable, vpcId: 'vpc-0a1', main: true },
    ],
    ...overrides,
  };
}

/**
 * The secret of every test access key. With an `iam` block the emulator verifies each signature
 * against its key's `secretAccessKey`, so a config names this one for the keys the clients use.
 */
export const testSecretAccessKey = 'pgvip-test-secret/0123456789abcdefghijklmnopqrst';

export interface ClientOptions {
  readonly accessKeyId?: string;
  readonly secretAccessKey?: string;
  readonly maxAttempts?: number;
  readonly requestTimeoutMs?: number;
}

export function ec2Client(endpoint: string, options: ClientOptions = {}): EC2Client {
  return new EC2Client({
    region,
    endpoint,
    credentials: { accessKeyId: options.accessKeyId ?? 'AKIDTESTDEFAULT0', secretAccessKey: options.secretAccessKey ?? testSecretAccessKey },
    maxAttempts: options.maxAttempts ?? 1,
    // Since @smithy/node-http-handler 4.x a requestTimeout only logs a warning unless
    // throwOnRequestTimeout is set: without it a hung EC2 call hangs its caller forever.
    requestHandler: {
      requestTimeout: options.requestTimeoutMs ?? 5_000,
      connectionTimeout: 2_000,
      throwOnRequestTimeout: true,
    },
  });
}

/** Per-suite limit, so that a regression that hangs fails the run instead of stalling it. */
export const suiteTimeout = { timeout: 20_000 };

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

/** Starts an emulator that is closed when the test ends, pass or fail. */
export async function emulatorForTest(t: TestContext, config: Ec2EmulatorConfig = baseConfig()): Promise<Ec2Emulator> {
  const ec2 = await startEc2Emulator(config);
  t.after(() => ec2.close());
  return ec2;
}

/** A hand-made Query API call, for what the SDK would refuse to send (missing or unknown parameters). */
export async function postQuery(url: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', ...headers },
    body: new URLSearchParams({ Version: '2016-11-15', ...fields }),
    signal: AbortSignal.timeout(5_000),
  });
  const text = await res.text();
  return {
    status: res.status,
    requestId: res.headers.get('x-amzn-requestid'),
    contentType: res.headers.get('content-type'),
    text,
    code: /<Code>([^<]*)<\/Code>/.exec(text)?.[1],
    message: /<Message>([^<]*)<\/Message>/.exec(text)?.[1],
  };
}

interface SdkError {
  name: string;
  message: string;
  $metadata?: { httpStatusCode?: number; requestId?: string; attempts?: number };
}

/** Asserts that an SDK call fails with the EC2 error `code`, its HTTP status and (optionally) message. */
export async function expectEc2Error(
  call: Promise<unknown>,
  code: string,
  httpStatus: number,
  message?: string | RegExp,
): Promise<SdkError> {
  let caught: SdkError | undefined;
  await assert.rejects(call, (err: SdkError) => {
    caught = err;
    return true;
  });
  assert.equal(caught!.name, code, `expected ${code}, got ${caught!.name}: ${caught!.message}`);
  assert.equal(caught!.$metadata?.httpStatusCode, httpStatus);
  if (typeof message === 'string') assert.equal(caught!.message, message);
  else if (message) assert.match(caught!.message, message);
  return caught!;
}
