// Goal: LocalPostgres keeps the PostgresPort contract against a real PostgreSQL 15 primary and standby.
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { LocalPostgres } from '@pgvip/agent';
import { startPgCluster } from '../../../test/fixtures/pg-cluster.js';
import { postgresPortContract } from '../../../test/fixtures/postgres-port-contract.js';

const walSegmentName = /^[0-9A-F]{24}$/;

postgresPortContract(
  async (t, { synchronous }) => {
    const cluster = await startPgCluster(t, { synchronous });
    const nodes = { a: cluster.primary, b: cluster.standby };
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
    };
  },
  { eventuallyMs: 15_000, boundSlackMs: 400 },
);
