// Goal: a minimal config gets every documented default, including those derived from other fields.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultTimings } from '../src/core/timings.js';
import { parseConfigText } from '../src/config/index.js';
import { agentYaml, witnessYaml } from './config-helpers.js';

test('an agent config with only the required fields gets all defaults', () => {
  const config = parseConfigText(agentYaml(), 'agent', 'agent.yaml');
  assert.deepEqual(config.listen, { host: '0.0.0.0', port: 8008 });
  assert.equal(config.stateDir, '/var/lib/pgvip');
  assert.equal(config.logLevel, 'info');
  const [a, b] = config.cluster.nodes;
  assert.deepEqual(a?.agent, { host: '10.0.1.11', port: 8008 });
  assert.deepEqual(a?.postgres, {
    host: '10.0.1.11',
    port: 5432,
    user: 'pgvip',
    database: 'postgres',
    dataDir: '/var/lib/postgresql/15/main',
    binDir: '/usr/lib/postgresql/15/bin',
    osUser: 'postgres',
    applicationName: 'db-a',
  });
  assert.equal(b?.postgres.applicationName, 'db-b');
  assert.deepEqual(config.cluster.witness, { id: 'witness', host: '10.0.2.20', port: 8009 });
  assert.deepEqual(config.cluster.vip, { mode: 'secondary-ip', address: '10.0.1.100', interface: 'eth0', discovery: 'imds' });
  assert.deepEqual(config.cluster.replication, { mode: 'sync', lagBytesMax: 16 * 1024 * 1024, degrade: 'async', slots: { enabled: true, maxWalKeepSizeMb: 8192 }, logicalSlots: { copy: false, names: [] } });
  assert.deepEqual(config.cluster.fencing, { mode: 'read-only', commitGuard: 'auto' });
  assert.deepEqual(config.cluster.timings, defaultTimings);
  assert.deepEqual(config.cluster.auth, { keyFile: '/etc/pgvip/cluster.key', disabled: false });
  assert.deepEqual(config.cluster.notifications, { webhooks: [], nodeHoldDownMs: 60_000 });
  // Off: a second failover while the new primary is dead is worth more than the wait (docs/runbook.md).
  assert.deepEqual(config.cluster.failover, { minIntervalMs: 0 });
});

test('the agent listens on its own node\'s agent.port unless listen.port is set', () => {
  const onB = parseConfigText(agentYaml((doc) => { doc.self = 'db-b'; doc.cluster.nodes[1].agent.port = 9108; }), 'agent', 'agent.yaml');
  assert.equal(onB.listen.port, 9108);
  const explicit = parseConfigText(agentYaml((doc) => { doc.listen = { port: 7000 }; }), 'agent', 'agent.yaml');
  assert.equal(explicit.listen.port, 7000);
});

test('a partial timings block keeps the defaults of the fields it omits', () => {
  const config = parseConfigText(agentYaml((doc) => { doc.cluster.timings = { leaseMs: 4000 }; }), 'agent', 'agent.yaml');
  assert.deepEqual(config.cluster.timings, { ...defaultTimings, leaseMs: 4000 });
});

test('notification channels get their defaults', () => {
  const config = parseConfigText(
    agentYaml((doc) => {
      doc.cluster.notifications = {
        webhooks: [{ url: 'https://hooks.example.com/x' }],
        command: { path: '/usr/local/bin/notify' },
        email: { smtpHost: 'smtp.example.com', from: 'pgvip@example.com', to: ['dba@example.com'] },
      };
    }),
    'agent',
    'agent.yaml',
  );
  assert.deepEqual(config.cluster.notifications, {
    webhooks: [{ url: 'https://hooks.example.com/x', events: ['*'], timeoutMs: 5000 }],
    command: { path: '/usr/local/bin/notify', args: [], events: ['*'], timeoutMs: 10000 },
    email: { smtpHost: 'smtp.example.com', smtpPort: 25, from: 'pgvip@example.com', to: ['dba@example.com'], ratePerHour: 6, events: ['*'] },
    nodeHoldDownMs: 60_000,
  });
});

test('a witness config with only clusters and the token file gets all defaults', () => {
  const config = parseConfigText(witnessYaml(), 'witness', 'witness.yaml');
  assert.equal(config.id, 'witness');
  assert.deepEqual(config.listen, { host: '0.0.0.0', port: 8009 });
  assert.deepEqual(config.operatorApi, { host: '127.0.0.1', port: 8010, auth: 'token', tokenFile: '/etc/pgvip/operator.token', hostNames: [] });
  assert.equal(config.stateDir, '/var/lib/pgvip');
  assert.equal(config.clusters.length, 1);
});

test('auth may be disabled, but only explicitly', () => {
  const config = parseConfigText(agentYaml((doc) => { doc.cluster.auth = { disabled: true }; }), 'agent', 'agent.yaml');
  assert.deepEqual(config.cluster.auth, { disabled: true });
});
