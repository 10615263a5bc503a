// The lab's AWS side: the EC2 emulator (Query API) and one IMDS per instance, listening on the
// router's service address inside the vpc namespace, with the data plane programmed from the
// emulator's truth (in-netns/vpc-fabric.ts does the work; this is the controller's handle on it).
//
// The ENIs carry the tag pgvip:cluster=<cluster>, and when deploy/iam/agent-<mode>.json exists,
// both database instances have the instance role `agentRoleName` with that policy, rendered for this
// cluster exactly as deployed: each host's IMDS hands out that role's temporary credentials, every
// request must be signed with them (SigV4, verified) and is checked against the policy. The
// daemons and the AWS CLI on the hosts get no keys: they find the role through the SDK's default
// credential chain, as on an instance. The lab proves the policy is enough.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { policyTemplatePath, renderAgentPolicy } from '../../deploy/cdk/lib/iam-policies.js';
import type { Ec2EmulatorConfig, FaultRule, LoggedRequest, Ec2Snapshot } from '../ec2-emulator/index.js';
import { Helper } from './ipc.js';
import { clusterName, nodeOfEni, type DbNode, type Topology } from './topology.js';

export interface FabricConfig {
  readonly emulator: Ec2EmulatorConfig;
  readonly imds: ReadonlyArray<{ readonly instanceId: string; readonly port: number }>;
  readonly serviceAddress: string;
  readonly vipMode: Topology['vipMode'];
  readonly vip: string;
  readonly routeTableId: string;
  /** ENI id → the router-side device of that ENI's host. */
  readonly devices: Readonly<Record<string, string>>;
  readonly postgresPort: number;
}

/** The router's VIP route changed (after the emulator's truth did). */
export interface VipRouteEvent {
  readonly type: 'vip-route';
  /** Wall-clock ms when the route was replaced. */
  readonly atMs: number;
  readonly version: number;
  readonly eni: string | null;
  readonly device: string | null;
  readonly cause: string;
}

/** The database hosts' instance role (one role for both, as deploy/cdk attaches it). */
export const agentRoleName = 'pgvip-agent';

export function emulatorConfigFor(t: Topology): { config: Ec2EmulatorConfig; iamEnforced: boolean } {
  const vpcId = 'vpc-0ab000001';
  const subnets = [{ id: 'subnet-0db00001', vpcId, cidrBlock: t.hosts['db-a'].subnetCidr, availabilityZone: `${t.region}a` }];
  // One subnet per AZ in route-table mode: db-b in the second, db-c (three nodes) in the third.
  for (const [n, az] of [['db-b', 'b'], ['db-c', 'c']] as const) {
    if (t.dbNodes.includes(n) && !subnets.some((s) => s.id === t.ec2[n].subnetId)) subnets.push({ id: t.ec2[n].subnetId, vpcId, cidrBlock: t.hosts[n].subnetCidr, availabilityZone: `${t.region}${az}` });
  }
  const routeTableMode = t.vipMode === 'route-table';
  const policyFile = policyTemplatePath(t.vipMode);
  const iamEnforced = existsSync(policyFile);
  const policy = iamEnforced
    ? renderAgentPolicy(t.vipMode, {
      region: t.region,
      account: t.accountId,
      cluster: clusterName,
      routeTableIds: [t.routeTableId],
    })
    : undefined;
  return {
    iamEnforced,
    config: {
      region: t.region,
      accountId: t.accountId,
      host: t.router.serviceAddress,
      port: t.ports.ec2,
      vpcs: [{ id: vpcId, cidrBlock: t.vpcCidr }],
      subnets,
      networkInterfaces: t.dbNodes.map((n) => ({
        id: t.ec2[n].eniId,
        subnetId: t.ec2[n].subnetId,
        instanceId: t.ec2[n].instanceId,
        privateIpAddress: t.hosts[n].address,
        // Route-table mode forwards a foreign destination (the VIP) to the ENI: AWS requires the
        // source/destination check off for that.
        sourceDestCheck: !routeTableMode,
        description: `pgvip lab ${n}`,
        tags: { 'pgvip:cluster': clusterName, Name: n },
      })),
      routeTables: routeTableMode
        ? [{ id: t.routeTableId, vpcId, main: true, routes: [{ destinationCidrBlock: `${t.vip.address}/32`, networkInterfaceId: t.ec2['db-a'].eniId }], subnetIds: subnets.map((s) => s.id) }]
        : [],
      ...(policy === undefined ? {} : {
        iam: {
          roles: {
            [agentRoleName]: { instances: t.dbNodes.map((n) => t.ec2[n].instanceId), policy: policy as never },
          },
        },
      }),
    },
  };
}

/** A request the lab makes from inside the VPC. */
export interface HttpInit {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly timeoutMs?: number;
  readonly tls?: { readonly ca: string; readonly cert?: string; readonly key?: string };
}

export class LabEmulator {
  readonly #helper: Helper;
  readonly #topology: Topology;
  readonly vipRoutes: VipRouteEvent[] = [];
  readonly iamEnforced: boolean;

  private constructor(helper: Helper, topology: Topology, iamEnforced: boolean) {
    this.#helper = helper;
    this.#topology = topology;
    this.iamEnforced = iamEnforced;
    helper.onEvent((e) => {
      if (e.type === 'vip-route') this.vipRoutes.push(e as unknown as VipRouteEvent);
    });
  }

  static async start(t: Topology, dir: string): Promise<LabEmulator> {
    const { config, iamEnforced } = emulatorConfigFor(t);
    const fabric: FabricConfig = {
      emulator: config,
      imds: t.dbNodes.map((n) => ({ instanceId: t.ec2[n].instanceId, port: t.ports.imds[n] })),
      serviceAddress: t.router.serviceAddress,
      vipMode: t.vipMode,
      vip: t.vip.address,
      routeTableId: t.routeTableId,
      devices: Object.fromEntries(t.dbNodes.map((n) => [t.ec2[n].eniId, t.hosts[n].routerDevice])),
      postgresPort: t.ports.postgres,
    };
    const file = path.join(dir, 'vpc-fabric.json');
    writeFileSync(file, JSON.stringify(fabric, null, 2));
    const helper = await Helper.start('vpc-fabric', { ns: t.router.ns }, 'test/lab/in-netns/vpc-fabric.ts', [file], path.join(dir, 'logs', 'vpc-fabric.log'));
    const lab = new LabEmulator(helper, t, iamEnforced);
    return lab;
  }

  get pid(): number | undefined {
    return this.#helper.pid;
  }

  /** Which node the VIP routes to now (the emulator's truth), or null. */
  async vipNode(): Promise<DbNode | null> {
    const r = await this.#helper.call<{ eni: string | null }>('truth');
    return nodeOfEni(this.#topology, r.eni ?? undefined);
  }

  snapshot(): Promise<Ec2Snapshot> {
    return this.#helper.call('snapshot');
  }

  /** The node the router sent VIP traffic to after each change since `sinceMs`. */
  vipMovesSince(sinceMs: number): Array<{ atMs: number; node: DbNode | null; cause: string }> {
    return this.vipRoutes
      .filter((e) => e.atMs >= sinceMs)
      .map((e) => ({ atMs: e.atMs, node: nodeOfEni(this.#topology, e.eni ?? undefined), cause: e.cause }));
  }

  setFaults(rules: readonly FaultRule[], seed?: number): Promise<void> {
    return this.#helper.call('faults', { plan: { rules, ...(seed === undefined ? {} : { seed }) } });
  }

  setTiming(timing: { remapDelayMs?: number; describeStaleMs?: number; imdsLagMs?: number }): Promise<void> {
    return this.#helper.call('timing', { timing });
  }

  /** Back to a well-behaved EC2: no faults, no delays. */
  async reset(): Promise<void> {
    await this.setFaults([]);
    await this.setTiming({ remapDelayMs: 0, describeStaleMs: 0, imdsLagMs: 0 });
  }

  requests(action?: string): Promise<LoggedRequest[]> {
    return this.#helper.call('requests', action === undefined ? {} : { action });
  }

  /**
   * An HTTP request made from inside the VPC (the router namespace); `tls` (PEM): the CA an https://
   * server's certificate must chain to, and a client certificate for mutual TLS.
   */
  http(url: string, init: HttpInit = {}): Promise<{ status: number; body: string }> {
    return this.#helper.call('http', { url, ...init }, (init.timeoutMs ?? 2_000) + 5_000);
  }

  /** SQL on a host's PostgreSQL, from inside the VPC; rows come back as arrays. */
  sql(address: string, sql: string, params: unknown[] = [], timeoutMs = 5_000): Promise<unknown[][]> {
    return this.#helper.call('sql', { host: address, sql, params, timeoutMs }, timeoutMs + 10_000);
  }

  close(): Promise<void> {
    return this.#helper.close();
  }
}
