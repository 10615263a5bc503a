// Goal: the in-memory FakePostgres keeps the PostgresPort contract that real PostgreSQL keeps.
import { FakePgNetwork } from '@pgvip/agent';
import { postgresPortContract } from '../../../test/fixtures/postgres-port-contract.js';

postgresPortContract(
  async (_t, { synchronous, commitGuard }) => {
    const { primary, standby } = FakePgNetwork.pair({ synchronous, commitGuard: commitGuard === true });
    const nodes = { a: primary, b: standby };
    return {
      a: primary,
      b: standby,
      endpointOf: (node) => nodes[node].endpoint,
      breakRewind: async (node) => nodes[node].breakRewind(),
      clientWrite: (node) => nodes[node].clientWrite(),
    };
  },
  { eventuallyMs: 500, boundSlackMs: 50 },
);
