// The real VipPort: EC2 through @aws-sdk/client-ec2, identity through IMDSv2 (or the config), and
// the OS half through `ip addr`. The mode decides only the EC2 half (secondary-ip.ts,
// route-table.ts); discovery, budgets, logging and the OS interface are shared.
//
// Discovery runs on first use and is kept once it succeeds; a failure is not kept, so the next
// effect tries again. dropLocal() never needs it: fencing must work when IMDS and EC2 are gone.
import { EC2Client, type EC2ClientConfig } from './ec2-sdk.js';
import type { AgentConfig, VipConfig } from '@pgvip/shared';
import type { Logger } from 'pino';
import type { CloudRouting } from './cloud-routing.js';
import { discoverVipTarget, type NodeVipConfig, type VipTarget } from './discovery.js';
import { Ec2Caller, type RetryPolicy } from './ec2-call.js';
import { ImdsClient } from './imds.js';
import { OsAddress, type RunCommand } from './os-address.js';
import { placementOf, type VipPlacement, type VipPort } from './port.js';
import { RouteTableRouting } from './route-table.js';
import { SecondaryIpRouting } from './secondary-ip.js';

export interface VipTimeouts {
  /** TCP connect to the EC2 endpoint, per attempt. */
  readonly ec2ConnectMs: number;
  /** One EC2 API attempt from request to answer; a hung call is cut here and retried. */
  readonly ec2AttemptMs: number;
  /** verify() retries its Describe calls within this. */
  readonly verifyBudgetMs: number;
  /** Each IMDS request (token included). */
  readonly imdsRequestMs: number;
  /** Each `ip` command. */
  readonly ipCommandMs: number;
}

/**
 * EC2 answers AssignPrivateIpAddresses and ReplaceRoute in well under a second; 2 s per attempt
 * leaves room for a slow one while still allowing a second attempt within a failover budget.
 */
export const defaultVipTimeouts: VipTimeouts = {
  ec2ConnectMs: 1_000,
  ec2AttemptMs: 2_000,
  verifyBudgetMs: 5_000,
  imdsRequestMs: 1_000,
  ipCommandMs: 5_000,
};

export interface VipPortConfig {
  readonly vip: VipConfig;
  /** This node's configured EC2 identity (nodes[self].vip); values here override IMDS. */
  readonly self?: NodeVipConfig | undefined;
}

/** The VIP part of an agent's config: the cluster's vip and this node's identity. */
export function vipPortConfigOf(agent: AgentConfig): VipPortConfig {
  return { vip: agent.cluster.vip, self: agent.cluster.nodes.find((node) => node.id === agent.self)?.vip };
}

export interface VipPortOptions {
  readonly logger: Logger;
  /** EC2 API endpoint (default: the SDK's for the region, or AWS_ENDPOINT_URL_EC2); tests use the emulator's. */
  readonly ec2Endpoint?: string;
  /** IMDS base URL (default http://169.254.169.254); tests use the emulator's IMDS. */
  readonly imdsEndpoint?: string;
  /** Runs `ip`; tests inject one so they need no root. */
  readonly runCommand?: RunCommand;
  /** Run `ip` inside this network namespace (the lab). */
  readonly netns?: string;
  /** Default: the SDK's provider chain (the instance role, through IMDS). Never logged. */
  readonly credentials?: EC2ClientConfig['credentials'];
  readonly timeouts?: Partial<VipTimeouts>;
  readonly retry?: RetryPolicy;
  /** [0, 1) uniform, for the backoff jitter (default Math.random). */
  readonly random?: () => number;
}

interface Ready {
  readonly target: VipTarget;
  readonly routing: CloudRouting;
  readonly client: EC2Client;
}

export class Ec2VipPort implements VipPort {
  readonly #config: VipPortConfig;
  readonly #options: VipPortOptions;
  readonly #timeouts: VipTimeouts;
  readonly #log: Logger;
  readonly #imds: ImdsClient | undefined;
  readonly #os: OsAddress;
  #ready: Promise<Ready> | undefined;
  #closed = false;

  constructor(config: VipPortConfig, options: VipPortOptions) {
    this.#config = config;
    this.#options = options;
    this.#timeouts = { ...defaultVipTimeouts, ...options.timeouts };
    this.#log = options.logger.child({ component: 'vip', vip: config.vip.address, mode: config.vip.mode });
    this.#imds = config.vip.discovery === 'imds' ? new ImdsClient({ endpoint: options.imdsEndpoint, requestTimeoutMs: this.#timeouts.imdsRequestMs }) : undefined;
    this.#os = new OsAddress({
      address: config.vip.address,
      device: config.vip.interface,
      netns: options.netns,
      run: options.runCommand,
      timeoutMs: this.#timeouts.ipCommandMs,
    });
  }

  /** This node's identity for the VIP (discovered once; a failure is retried on the next call). */
  async discover(): Promise<VipTarget> {
    return (await this.#prepare()).target;
  }

  async moveInCloud(opts: { term: number; budgetMs: number }): Promise<{ requestIds: string[] }> {
    const startedAt = performance.now();
    const deadlineMs = startedAt + opts.budgetMs;
    const { target, routing } = await this.#prepare();
    const fields = { term: opts.term, eniId: target.eniId };
    const requestIds = await routing.pointAt(target, { deadlineMs, fields });
    this.#log.info({ ...fields, requestIds, durationMs: Math.round(performance.now() - startedAt) }, `VIP ${this.#config.vip.address} pointed at ${target.eniId} in EC2 for term ${opts.term}`);
    return { requestIds };
  }

  async addLocal(): Promise<void> {
    const { target } = await this.#prepare();
    await this.#os.add(target.prefixLength);
    this.#log.info({ device: this.#os.device, prefixLength: target.prefixLength }, `VIP ${this.#config.vip.address}/${target.prefixLength} configured on ${this.#os.device}`);
  }

  async dropLocal(): Promise<void> {
    await this.#os.drop();
    this.#log.info({ device: this.#os.device }, `VIP ${this.#config.vip.address} absent from ${this.#os.device}`);
  }

  async verify(): Promise<VipPlacement> {
    const { target, routing } = await this.#prepare();
    const deadlineMs = performance.now() + this.#timeouts.verifyBudgetMs;
    const [cloud, onInterface] = await Promise.all([
      routing.inspect(target, { deadlineMs, fields: { eniId: target.eniId } }),
      this.#os.isPresent(),
    ]);
    const placement = placementOf(cloud.routedHere, onInterface);
    this.#log[placement === 'here' ? 'debug' : 'info'](
      { placement, eniId: target.eniId, onInterface },
      `VIP ${this.#config.vip.address} is ${placement}: ${cloud.detail}; ${onInterface ? 'on' : 'not on'} ${this.#os.device}`,
    );
    return placement;
  }

  /** Releases the EC2 client's sockets. The port must not be used afterwards. */
  async close(): Promise<void> {
    this.#closed = true;
    const ready = await this.#ready?.catch(() => undefined);
    ready?.client.destroy();
  }

  #prepare(): Promise<Ready> {
    if (this.#closed) return Promise.reject(new Error('the VIP port is closed'));
    if (!this.#ready) {
      const ready = this.#discoverAndConnect();
      this.#ready = ready;
      ready.catch(() => {
        if (this.#ready === ready) this.#ready = undefined;
      });
    }
    return this.#ready;
  }

  async #discoverAndConnect(): Promise<Ready> {
    const { vip, self } = this.#config;
    const target = await discoverVipTarget(vip, self, this.#imds);
    this.#log.info({ ...target }, `VIP target: ${target.eniId} in ${target.region}${target.instanceId ? ` (${target.instanceId})` : ''}, /${target.prefixLength} on ${vip.interface}`);
    const client = new EC2Client({
      region: target.region,
      ...(this.#options.ec2Endpoint === undefined ? {} : { endpoint: this.#options.ec2Endpoint }),
      ...(this.#options.credentials === undefined ? {} : { credentials: this.#options.credentials }),
      // Retries are ours (ec2-call.ts): the SDK's would ignore the budget.
      maxAttempts: 1,
      // Without throwOnRequestTimeout the handler only warns when requestTimeout passes, and a hung
      // call would hang the failover.
      requestHandler: {
        connectionTimeout: this.#timeouts.ec2ConnectMs,
        requestTimeout: this.#timeouts.ec2AttemptMs,
        throwOnRequestTimeout: true,
      },
    });
    const caller = new Ec2Caller({ logger: this.#log, retry: this.#options.retry, random: this.#options.random });
    const routing: CloudRouting =
      vip.mode === 'secondary-ip'
        ? new SecondaryIpRouting({ client, caller, address: vip.address, imds: this.#imds, logger: this.#log })
        : new RouteTableRouting({ client, caller, address: vip.address, routeTableIds: vip.routeTableIds });
    return { target, routing, client };
  }
}

/** The agent's VipPort for its config; nothing is contacted until the first call. */
export function createVipPort(config: VipPortConfig, options: VipPortOptions): Ec2VipPort {
  return new Ec2VipPort(config, options);
}
