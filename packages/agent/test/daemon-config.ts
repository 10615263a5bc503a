// The agent file of the in-process daemon tests: db-a of a two-node cluster whose peer and witness
// are loopback ports nobody answers (the tests drive the agent themselves), its PostgreSQL and VIP
// faked. With a key the cluster is authenticated (the key file is written into `dir`), without one
// auth is disabled.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { formatKeyFile, parseConfigText, type AgentConfig } from '@pgvip/shared';

export function daemonTestConfig(dir: string, key: Buffer | null): AgentConfig {
  let auth = '{ disabled: true }';
  if (key !== null) {
    const keyFile = path.join(dir, 'cluster.key');
    writeFileSync(keyFile, formatKeyFile(key), { mode: 0o600 });
    auth = `{ keyFile: ${keyFile} }`;
  }
  const yaml = `
self: db-a
stateDir: ${dir}/state
cluster:
  name: c1
  nodes:
    - id: db-a
      agent: { host: 127.0.0.1, port: 1 }
      postgres: { host: 127.0.0.1, port: 5432, dataDir: /var/lib/postgresql/15/main }
    - id: db-b
      agent: { host: 127.0.0.1, port: 2 }
      postgres: { host: 127.0.0.1, port: 5433, dataDir: /var/lib/postgresql/15/main }
  witness: { host: 127.0.0.1, port: 3 }
  vip: { mode: secondary-ip, address: 198.18.1.100, discovery: imds }
  auth: ${auth}
`;
  return parseConfigText(yaml, 'agent', 'test.yaml');
}
