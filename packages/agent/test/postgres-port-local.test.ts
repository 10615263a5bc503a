// Goal: LocalPostgres keeps the PostgresPort contract against a real PostgreSQL 15 primary and standby.
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { LocalPostgres, type PgEndpoint } from '@pgvip/agent';
import { startPgCluster } from '../../../test/fixtures/pg-cluster.js';
import { postgresPortContract, type ClientWrite } from '../../../test/fixtures/postgres-port-contract.js';

const walSegmentName = /^[0-9A-F]{24}$/;

/** An application role (not the agent's) and its table, created on the primary before the test. */
const appSetupSql = 'CREATE ROLE app LOGIN; CREATE TABLE app_writes (id int); GRANT INSERT ON app_writes TO app';

async function clientWrite(endpoint: PgEndpoint): Promise<ClientWrite> {
  const client = new pg.Client({ host: endpoint.host, port: endpoint.port, user: 'app', database: endpoint.database, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; INSERT INTO app_writes VALUES (1)');
    return 'written';
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '28000') return 'refused';
    if (code === '25006') return 'read-only';
    if (code === 'ECONNREFUSED' || code === '57P03') return 'unreachable';
    throw err;
  } finally {
    await client.end().catch(() => undefined);
  }
}

postgresPortContract(
  async (t, { synchronous, commitGuard }) => {
    const cluster = await startPgCluster(t, { synchronous, commitGuard: commitGuard === true });
    const nodes = { a: cluster.primary, b: cluster.standby };
    await cluster.primary.psql(appSetupSql);
    return {
      a: new LocalPostgres(cluster.primary.agentConfig),
      b: new LocalPostgres(cluster.standby.agentConfig),
      endpointOf: (node) => nodes[node].endpoint,
      // pg_rewind reads the target's own WAL from the last common checkpoint on; without it, it fails.
      breakRewind: async (node) => {
        const walDir = path.join(nodes[node].dataDir, 'pg_wal');
        for (const name of await readdir(walDir)) {
          if (walSegmentName.test(name)) await rm(path.join(walDir, name));
        }
      },
      clientWrite: (node) => clientWrite(nodes[node].endpoint),
    };
  },
  { eventuallyMs: 15_000, boundSlackMs: 400 },
);
