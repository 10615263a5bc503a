// Shared pieces of the VIP port tests: an in-memory log sink, an in-memory `ip` (so the EC2 tests run
// without root), and a VIP port wired to the EC2 emulator and, optionally, its IMDS.
import type { TestContext } from 'node:test';
import type { VipConfig } from '@pgvip/shared';
import { createVipPort, type CommandOutcome, type Ec2VipPort, type NodeVipConfig, type RetryPolicy, type RunCommand, type VipTimeouts } from '@pgvip/agent';
import pino from 'pino';
import { startImds, type Ec2Emulator, type ImdsServer } from '../../../test/ec2-emulator/index.js';
import { region, vip } from '../../../test/ec2-emulator/fixtures.js';

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** A pino logger at debug level that keeps parsed lines in memory. */
export function memoryLogger(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

interface IpEntry {
  readonly address: string;
  readonly prefixLength: number;
}

/**
 * `ip addr` on in-memory devices, answering as iproute2 6.1 does (exit codes and messages), so the
 * OS half of the port runs for real minus the kernel.
 */
export class MemoryIp {
  readonly commands: string[][] = [];
  readonly #devices = new Map<string, IpEntry[]>();

  constructor(devices: readonly string[] = ['eth0']) {
    for (const device of devices) this.#devices.set(device, []);
  }

  /** The device's IPv4 addresses as `a.b.c.d/len`. */
  addresses(device = 'eth0'): string[] {
    return (this.#devices.get(device) ?? []).map((e) => `${e.address}/${e.prefixLength}`);
  }

  readonly run: RunCommand = async (file, args) => {
    this.commands.push([file, ...args]);
    const words = args[0] === '-n' ? args.slice(2) : [...args];
    const fail = (exitCode: number, stderr: string): CommandOutcome => ({ exitCode, timedOut: false, stdout: '', stderr });
    if (words[0] === '-j') {
      const device = words.at(-1)!;
      const entries = this.#devices.get(device);
      if (!entries) return fail(1, `Device "${device}" does not exist.\n`);
      const addrInfo = entries.map((e) => ({ family: 'inet', local: e.address, prefixlen: e.prefixLength, scope: 'global', label: device }));
      return { exitCode: 0, timedOut: false, stdout: JSON.stringify([{ ifindex: 2, ifname: device, addr_info: addrInfo }]), stderr: '' };
    }
    const [, verb, cidr, , device] = words;
    const entries = this.#devices.get(device!);
    if (!entries) return fail(1, `Cannot find device "${device}"\n`);
    const [address, prefix] = cidr!.split('/');
    const index = entries.findIndex((e) => e.address === address && e.prefixLength === Number(prefix));
    if (verb === 'add') {
      if (index >= 0) return fail(2, 'Error: ipv4: Address already assigned.\n');
      entries.push({ address: address!, prefixLength: Number(prefix) });
    } else {
      if (index < 0) return fail(2, 'Error: ipv4: Address not found.\n');
      entries.splice(index, 1);
    }
    return { exitCode: 0, timedOut: false, stdout: '', stderr: '' };
  };
}

/** Short timeouts, so the fault tests finish quickly. */
export const quickTimeouts: Partial<VipTimeouts> = {
  ec2ConnectMs: 500,
  ec2AttemptMs: 300,
  verifyBudgetMs: 1_500,
  imdsRequestMs: 500,
};
export const quickRetry: RetryPolicy = { baseDelayMs: 20, maxDelayMs: 100 };

type SecondaryIpVip = Extract<VipConfig, { mode: 'secondary-ip' }>;
type RouteTableVip = Extract<VipConfig, { mode: 'route-table' }>;

export const secondaryIpVip = (overrides: Partial<SecondaryIpVip> = {}): SecondaryIpVip => ({
  mode: 'secondary-ip',
  address: vip,
  interface: 'eth0',
  discovery: 'config',
  region,
  prefixLength: 24,
  ...overrides,
});

export const routeTableVip = (
  address: string,
  routeTableIds: string[],
  overrides: Partial<RouteTableVip> = {},
): RouteTableVip => ({
  mode: 'route-table',
  address,
  interface: 'eth0',
  discovery: 'config',
  region,
  routeTableIds,
  ...overrides,
});

export const testSecret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYTESTSECRET';

export interface EmulatedPortOptions {
  readonly vip: VipConfig;
  readonly self?: NodeVipConfig;
  readonly imds?: ImdsServer;
  readonly accessKeyId?: string;
  readonly timeouts?: Partial<VipTimeouts>;
  readonly retry?: RetryPolicy;
  readonly random?: () => number;
  readonly ip?: MemoryIp;
}

export interface EmulatedPort {
  readonly port: Ec2VipPort;
  readonly ip: MemoryIp;
  readonly logs: LogLine[];
}

/** A VIP port talking to the emulator with the real SDK; closed when the test ends. */
export function emulatedPort(t: TestContext, ec2: Ec2Emulator, options: EmulatedPortOptions): EmulatedPort {
  const { logger, lines } = memoryLogger();
  const ip = options.ip ?? new MemoryIp();
  const port = createVipPort(
    { vip: options.vip, self: options.self },
    {
      logger,
      ec2Endpoint: ec2.url,
      ...(options.imds ? { imdsEndpoint: options.imds.url } : {}),
      runCommand: ip.run,
      credentials: { accessKeyId: options.accessKeyId ?? 'AKIDVIPTESTS00001', secretAccessKey: testSecret },
      timeouts: { ...quickTimeouts, ...options.timeouts },
      retry: options.retry ?? quickRetry,
      ...(options.random ? { random: options.random } : {}),
    },
  );
  t.after(() => port.close());
  return { port, ip, logs: lines };
}

/** The emulator's IMDS for one instance; closed when the test ends. */
export async function imdsForTest(
  t: TestContext,
  ec2: Ec2Emulator,
  instanceId: string,
  clock?: () => number,
): Promise<ImdsServer> {
  const imds = await startImds({ instanceId, source: ec2, ...(clock ? { clock } : {}) });
  t.after(() => imds.close());
  return imds;
}
