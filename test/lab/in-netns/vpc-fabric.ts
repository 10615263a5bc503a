// Runs INSIDE the vpc router namespace (started by ../emulator.ts): the "AWS side" of the lab.
//
// - the EC2 emulator's Query API and one IMDS per instance, on the router's service address;
// - the data plane: whenever the emulator's truth changes, the router's route for the VIP is
//   replaced so that VIP traffic reaches only the link of the ENI that holds it (secondary-ip mode)
//   or that its /32 route points at (route-table mode), or nowhere;
// - a vantage point in the VPC for the controller: HTTP requests and SQL to the hosts.
import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import pg from 'pg';
import { Agent as UndiciAgent, fetch as undiciFetch } from 'undici';
import { holderOfAddress, startEc2Emulator, startImds, type Ec2Snapshot, type ImdsServer } from '../../ec2-emulator/index.js';
import type { FaultPlan } from '../../ec2-emulator/index.js';
import { serveRpc, type RpcRequest } from '../ipc.js';
import type { FabricConfig, VipRouteEvent } from '../emulator.js';

const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as FabricConfig;

/** Where the VIP goes according to `truth`: the ENI that carries it, by mode. */
function vipEni(truth: Ec2Snapshot): string | undefined {
  if (config.vipMode === 'secondary-ip') return holderOfAddress(truth, config.vip)?.id;
  const table = truth.routeTables.find((t) => t.id === config.routeTableId);
  return table?.routes.find((r) => r.destinationCidrBlock === `${config.vip}/32`)?.networkInterfaceId;
}

function ipRoute(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('ip', ['route', 'replace', ...args], { timeout: 5_000 }, (err, _out, stderr) => (err ? reject(new Error(`ip route replace ${args.join(' ')}: ${stderr || err.message}`)) : resolve()));
  });
}

// Route changes are applied one at a time in truth order: two quick remaps must not race.
let routing: Promise<void> = Promise.resolve();
let currentDevice: string | null | undefined;

function program(
  truth: Ec2Snapshot,
  version: number,
  cause: string,
  emit: (e: VipRouteEvent & Record<string, unknown>) => void,
): void {
  const eni = vipEni(truth);
  const device = eni === undefined ? null : (config.devices[eni] ?? null);
  routing = routing.then(async () => {
    if (device === currentDevice) return;
    await (device === null ? ipRoute(['blackhole', `${config.vip}/32`]) : ipRoute([`${config.vip}/32`, 'dev', device]));
    currentDevice = device;
    emit({ type: 'vip-route', atMs: Date.now(), version, eni: eni ?? null, device, cause });
  });
  routing.catch((err: unknown) => console.error(`vpc-fabric: ${(err as Error).message}`));
}

async function main(): Promise<void> {
  const ec2 = await startEc2Emulator(config.emulator);
  const imds: ImdsServer[] = [];
  for (const i of config.imds) {
    imds.push(await startImds({ instanceId: i.instanceId, source: ec2, host: config.serviceAddress, port: i.port }));
  }

  const pools = new Map<string, pg.Pool>();
  const poolFor = (host: string): pg.Pool => {
    let pool = pools.get(host);
    if (!pool) {
      pool = new pg.Pool({ host, port: config.postgresPort, user: 'postgres', database: 'postgres', max: 2, connectionTimeoutMillis: 2_000, idleTimeoutMillis: 5_000 });
      pool.on('error', () => undefined); // a host that died under an idle connection
      pools.set(host, pool);
    }
    return pool;
  };

  const { emit } = serveRpc(
    {
      truth: () => ({
        version: ec2.state.truthVersion,
        eni: vipEni(ec2.truth()) ?? null,
        device: currentDevice ?? null,
      }),
      snapshot: () => ec2.truth(),
      faults: (req: RpcRequest) => {
        ec2.setFaults(req.plan as FaultPlan);
        return null;
      },
      timing: (req: RpcRequest) => {
        ec2.setTiming(req.timing as Record<string, number>);
        return null;
      },
      requests: (req: RpcRequest) => ec2.requests(req.action === undefined ? {} : { action: req.action as string }),
      http: async (req: RpcRequest) => {
        // https:// to pgvip's TLS listeners: their certificates chain to the lab's CA, which is
        // checked as pgvip's own clients check it (never turned off); mutual TLS wants a client certificate.
        const tls = req.tls as { ca: string; cert?: string; key?: string } | undefined;
        const connect = { ...tls, rejectUnauthorized: true };
        const dispatcher = tls === undefined ? undefined : new UndiciAgent({ connect });
        try {
          const res = await undiciFetch(req.url as string, {
            method: (req.method as string | undefined) ?? 'GET',
            headers: (req.headers as Record<string, string> | undefined) ?? {},
            ...(req.body === undefined ? {} : { body: req.body as string }),
            signal: AbortSignal.timeout((req.timeoutMs as number | undefined) ?? 2_000),
            ...(dispatcher === undefined ? {} : { dispatcher }),
          });
          return { status: res.status, body: await res.text() };
        } finally {
          await dispatcher?.close();
        }
      },
      sql: async (req: RpcRequest) => {
        const timeoutMs = (req.timeoutMs as number | undefined) ?? 5_000;
        const client = await poolFor(req.host as string).connect();
        try {
          await client.query(`SET statement_timeout = ${Math.max(1, Math.floor(timeoutMs))}`);
          const r = await client.query({ text: req.sql as string, values: (req.params as unknown[] | undefined) ?? [], rowMode: 'array' });
          client.release();
          return r.rows;
        } catch (err) {
          client.release(true);
          throw err;
        }
      },
    },
    async () => {
      for (const pool of pools.values()) await pool.end().catch(() => undefined);
      for (const server of imds) await server.close();
      await ec2.close();
    },
  );

  ec2.onTruthChange(({ truth, version, cause }) => program(truth, version, cause, emit));
  program(ec2.truth(), ec2.state.truthVersion, 'initial state', emit);
  await routing;
  emit({ type: 'ready', ec2: ec2.url, imds: imds.map((s) => s.url) });
}

main().catch((err: unknown) => {
  console.error('vpc-fabric:', err);
  process.send?.({ type: 'fatal', error: (err as Error).message });
  process.exit(1);
});
