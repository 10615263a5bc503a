// The agent file `pgvip doctor`'s PostgreSQL checks read in the tests: db-a is `node`, a real
// PostgreSQL of test/fixtures/pg-cluster.ts; the rest of the cluster is never dialled. `file` adds a
// top-level line (e.g. a rejoin block), `cluster` a line of the cluster block (e.g. fencing).
import { parseConfigText, type AgentConfig } from '@pgvip/shared';
import type { PgNode } from '../../../test/fixtures/pg-cluster.js';

export function doctorConfigFor(node: PgNode, extra: { file?: string; cluster?: string } = {}): AgentConfig {
  return parseConfigText(
    `self: db-a${extra.file === undefined ? '' : `\n${extra.file}`}
cluster:
  name: main
  nodes:
    - id: db-a
      agent: { host: 198.18.1.10 }
      postgres: { host: ${node.host}, port: ${node.port}, user: postgres, dataDir: ${node.dataDir} }
    - id: db-b
      agent: { host: 198.18.1.11 }
      postgres: { host: 198.18.1.11, dataDir: /var/lib/postgresql/15/main }
  witness: { host: 198.18.2.20 }
  vip: { mode: secondary-ip, address: 198.18.1.100 }
  auth: { disabled: true }${extra.cluster === undefined ? '' : `\n  ${extra.cluster}`}
`,
    'agent',
    'agent.yaml',
  );
}
