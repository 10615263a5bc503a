// How long the read-only fence takes on a real PostgreSQL 15 primary with a streaming standby and
// idle client sessions to cut: the agent's pause watch fences right after a thaw, and until the
// fence returns a client may still commit. Run:
//   node scripts/run-ts.mjs packages/agent/bench/fence-bench.ts [rounds] [clients]
import pg from 'pg';
import { LocalPostgres } from '@pgvip/agent';
import { startPgCluster } from '../../../test/fixtures/pg-cluster.js';

const rounds = Number(process.argv[2] ?? 30);
const clientsPerRound = Number(process.argv[3] ?? 10);

async function clientSessions(host: string, port: number, n: number): Promise<pg.Client[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const c = new pg.Client({ host, port, user: 'app', database: 'postgres' });
      c.on('error', () => undefined); // terminated by the fence
      await c.connect();
      return c;
    }),
  );
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

const cluster = await startPgCluster(undefined);
try {
  await cluster.primary.psql('CREATE ROLE app LOGIN');
  const port = new LocalPostgres(cluster.primary.agentConfig);
  const fenceMs: number[] = [];
  const unfenceMs: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const clients = await clientSessions(cluster.primary.host, cluster.primary.port, clientsPerRound);
    let startedAt = performance.now();
    const r = await port.fence('read-only');
    fenceMs.push(performance.now() - startedAt);
    if (r.terminatedBackends < clientsPerRound) throw new Error(`only ${r.terminatedBackends} of ${clientsPerRound} sessions terminated`);
    startedAt = performance.now();
    await port.unfence();
    unfenceMs.push(performance.now() - startedAt);
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
  port.close();
  const show = (what: string, xs: number[]): string => {
    const s = [...xs].sort((x, y) => x - y);
    return `${what}: median ${percentile(s, 50).toFixed(1)} ms, p90 ${percentile(s, 90).toFixed(1)} ms, max ${(s.at(-1) ?? NaN).toFixed(1)} ms`;
  };
  console.log(`${rounds} rounds, ${clientsPerRound} idle client sessions each`);
  console.log(show('fence(read-only)', fenceMs));
  console.log(show('unfence', unfenceMs));
} finally {
  await cluster.cleanup();
}
