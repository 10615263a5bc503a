// Goal: each kind of invalid field is reported at its path, with the bad value and what would be
// valid, all problems of a file at once, and never in zod's own words.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../src/config/index.js';
import { agentYaml, lineAbout, problemsOf, witnessYaml } from './config-helpers.js';

const agent = (text: string) => () => parseConfigText(text, 'agent', 'agent.yaml');
const witness = (text: string) => () => parseConfigText(text, 'witness', 'witness.yaml');

test('a value of the wrong type names the field, the value and the expected type', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.nodes[0].postgres.port = 'fivefourthreetwo'; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'agent.yaml', 'cluster.nodes[0].postgres.port', 'must be an integer from 1 to 65535', '(got "fivefourthreetwo")');
});

test('an out-of-range port names the range and the value', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.nodes[1].agent.port = 70000; })), 'PGVIP_CONFIG_INVALID');
  assert.deepEqual(lines, ['agent.yaml: cluster.nodes[1].agent.port: must be an integer from 1 to 65535 (got 70000)']);
});

test('a malformed IPv4 VIP gives an example of a valid one', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.vip.address = '10.0.1.300'; })), 'PGVIP_CONFIG_INVALID');
  assert.deepEqual(lines, ['agent.yaml: cluster.vip.address: must be an IPv4 address, e.g. 10.0.1.100 (got "10.0.1.300")']);
});

test('a host that is neither an IPv4 address nor a host name is rejected', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.witness.host = '10.0.2.256'; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'agent.yaml', 'cluster.witness.host', 'must be an IPv4 address or a host name', '(got "10.0.2.256")');
});

test('hosts may be IPv4 addresses or DNS names, but not malformed names', async () => {
  const ok = parseConfigText(agentYaml((d) => { d.cluster.witness.host = 'witness.pgvip.internal'; }), 'agent', 'agent.yaml');
  assert.equal(ok.cluster.witness.host, 'witness.pgvip.internal');
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.nodes[0].agent.host = '-db-a'; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'agent.yaml', 'cluster.nodes[0].agent.host', '(got "-db-a")', 'e.g. 10.0.1.11');
});

test('a missing required field says it is required and what it must be', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { delete d.cluster.nodes[0].postgres.dataDir; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'agent.yaml', 'cluster.nodes[0].postgres.dataDir', 'is required (got nothing)', 'must be an absolute path', '/var/lib/postgresql/15/main');
});

test('an unknown key is named and the closest valid key suggested', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.nodes[0].agent.prot = 8008; })), 'PGVIP_CONFIG_INVALID');
  assert.deepEqual(lines, ['agent.yaml: cluster.nodes[0].agent.prot: unknown key (got 8008); did you mean "port"? valid keys here: host, port']);
});

test('an unknown key with no close match lists the valid keys instead of guessing', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.replication = { flavour: 'fast' }; })), 'PGVIP_CONFIG_INVALID');
  const line = lineAbout(lines, 'agent.yaml', 'cluster.replication.flavour', 'unknown key (got "fast")', 'valid keys here: mode, lagBytesMax');
  assert.ok(!line.includes('did you mean'), line);
});

test('a misspelt enum value names the valid values and the closest one', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.vip.mode = 'secondary_ip'; })), 'PGVIP_CONFIG_INVALID');
  assert.deepEqual(lines, ['agent.yaml: cluster.vip.mode: must be one of secondary-ip, route-table (got "secondary_ip"); did you mean "secondary-ip"?']);
});

test('a misspelt notification event is caught with a suggestion', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.notifications = { webhooks: [{ url: 'https://h.example.com/', events: ['failovr'] }] }; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'agent.yaml', 'cluster.notifications.webhooks[0].events[0]', '(got "failovr")', 'did you mean "failover"?');
});

test("'*' mixed with event names is rejected", async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.notifications = { command: { path: '/bin/notify', events: ['*', 'failover'] } }; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'agent.yaml', 'cluster.notifications.command.events', "mixes '*' with event names", '(got ["*","failover"])', "list '*' alone");
});

test('duplicate node ids are rejected at the second node', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.nodes[1].id = 'db-a'; })), 'PGVIP_CONFIG_INVALID');
  assert.deepEqual(lines, ['agent.yaml: cluster.nodes[1].id: duplicates nodes[0].id (got "db-a"); every node needs its own id, e.g. db-a, db-b and db-c']);
});

test('one database node is not a cluster', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.nodes.pop(); })), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'agent.yaml', 'cluster.nodes', 'must be a list of 2 to 9 database nodes', '(got 1)');
});

test('three database nodes are refused with the witness backend (config-nodes.test.ts: on etcd)', async () => {
  const lines = await problemsOf(
    agent(agentYaml((d) => { d.cluster.nodes.push({ id: 'db-c', agent: { host: '10.0.1.13' }, postgres: { host: '10.0.1.13', dataDir: '/data' } }); })),
    'PGVIP_CONFIG_INVALID',
  );
  assert.deepEqual(lines, [
    'agent.yaml: cluster.nodes: must list exactly two database nodes with quorum.backend "witness" (a primary and its standby: ' +
      'the witness is the third voter, and it elects between two) (got 3); list two nodes, or set quorum.backend: etcd for 3 to 9 nodes (docs/etcd.md)',
  ]);
});

test('self must name one of the cluster nodes, and the error lists them', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { d.self = 'db-c'; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'agent.yaml', 'self', 'names no node of cluster "main"', '(got "db-c")', 'use one of db-a, db-b');
});

test('the witness may not share an id with a node', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.witness.id = 'db-b'; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'agent.yaml', 'cluster.witness.id', 'is also the id of nodes[1]', '(got "db-b")', 'give the witness its own id');
});

test('the VIP may not be an address a host already owns', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.vip.address = '10.0.1.12'; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'agent.yaml', 'cluster.vip.address', 'is also nodes[1].agent.host', '(got "10.0.1.12")');
});

test('route-table mode without routeTableIds asks for them', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.vip = { mode: 'route-table', address: '192.168.100.10' }; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'agent.yaml', 'cluster.vip.routeTableIds', 'is required (got nothing)', 'non-empty list of route table ids', 'rtb-');
});

test('route-table mode with an empty list or a wrong id is rejected', async () => {
  const empty = await problemsOf(agent(agentYaml((d) => { d.cluster.vip = { mode: 'route-table', address: '192.168.100.10', routeTableIds: [] }; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(empty, 'agent.yaml', 'cluster.vip.routeTableIds', 'non-empty list', '(got 0)');
  const wrong = await problemsOf(agent(agentYaml((d) => { d.cluster.vip = { mode: 'route-table', address: '192.168.100.10', routeTableIds: ['eni-0abc'] }; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(wrong, 'agent.yaml', 'cluster.vip.routeTableIds[0]', 'rtb-<hex>', '(got "eni-0abc")');
});

test('discovery: config without ENI ids, region or prefix length names each missing field', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.vip.discovery = 'config'; })), 'PGVIP_CONFIG_INVALID');
  assert.equal(lines.length, 4, lines.join('\n'));
  lineAbout(lines, 'agent.yaml', 'cluster.nodes[0].vip.eniId', 'is required when vip.discovery is "config" (got nothing)', "set db-a's ENI id", 'or use discovery: imds');
  lineAbout(lines, 'agent.yaml', 'cluster.nodes[1].vip.eniId', "set db-b's ENI id");
  lineAbout(lines, 'agent.yaml', 'cluster.vip.region', 'e.g. eu-west-1');
  lineAbout(lines, 'agent.yaml', 'cluster.vip.prefixLength', 'prefix length');
});

test('auth without keyFile is refused unless disabled explicitly', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.auth = {}; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'agent.yaml', 'cluster.auth.keyFile', 'is required unless auth.disabled is true (got nothing)', '/etc/pgvip/cluster.key', 'auth.disabled: true');
});

test('no auth block at all is refused', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { delete d.cluster.auth; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'agent.yaml', 'cluster.auth', 'is required (got nothing)', 'keyFile');
});

test('auth disabled together with a keyFile is a contradiction', async () => {
  const lines = await problemsOf(agent(agentYaml((d) => { d.cluster.auth.disabled = true; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'agent.yaml', 'cluster.auth.disabled', 'contradicts auth.keyFile (got true)');
});

test('a witness with two clusters of the same name is refused', async () => {
  const lines = await problemsOf(witness(witnessYaml((d) => { d.clusters.push(structuredClone(d.clusters[0])); })), 'PGVIP_CONFIG_INVALID');
  assert.deepEqual(lines, ['witness.yaml: clusters[1].name: duplicates clusters[0].name (got "main"); every cluster needs its own name']);
});

test("a cluster whose witness.id is not this witness's id is refused", async () => {
  const lines = await problemsOf(witness(witnessYaml((d) => { d.id = 'w1'; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'witness.yaml', 'clusters[0].witness.id', 'differs from this witness\'s id "w1" (got "witness")', 'set it to "w1"');
});

test('a witness with no clusters is refused', async () => {
  const lines = await problemsOf(witness(witnessYaml((d) => { d.clusters = []; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'witness.yaml', 'clusters', 'non-empty list of clusters', '(got 0)');
});

test('the operator API needs a token file unless auth: disabled says otherwise, and only on loopback', async () => {
  // Given no token file, on loopback (the default) or on a public address
  for (const operatorApi of [{}, { host: '0.0.0.0' }]) {
    const lines = await problemsOf(witness(witnessYaml((d) => { d.operatorApi = operatorApi; })), 'PGVIP_CONFIG_INVALID');
    // Then the field is named, with why and how to make one
    lineAbout(lines, 'witness.yaml', 'operatorApi.tokenFile', 'is required: the operator API can switch over', 'openssl rand -hex 32 > /etc/pgvip/operator.token', 'operatorApi.auth: disabled');
  }
  // auth: disabled is accepted on loopback only, and never together with a token file
  const open = parseConfigText(witnessYaml((d) => { d.operatorApi = { auth: 'disabled' }; }), 'witness', 'witness.yaml');
  assert.equal(open.operatorApi.auth, 'disabled');
  const remote = await problemsOf(witness(witnessYaml((d) => { d.operatorApi = { host: '0.0.0.0', auth: 'disabled' }; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(remote, 'witness.yaml', 'operatorApi.auth', 'only be "disabled" when operatorApi.host is a loopback address', 'bind host to 127.0.0.1');
  // A name that only starts like a loopback address resolves anywhere: it is not loopback
  for (const host of ['127.0.0.1.example.com', '127.evil.example']) {
    const named = await problemsOf(witness(witnessYaml((d) => { d.operatorApi = { host, auth: 'disabled' }; })), 'PGVIP_CONFIG_INVALID');
    lineAbout(named, 'witness.yaml', 'operatorApi.auth', 'only be "disabled" when operatorApi.host is a loopback address');
  }
  for (const host of ['127.0.0.2', 'localhost']) {
    const local = parseConfigText(witnessYaml((d) => { d.operatorApi = { host, auth: 'disabled' }; }), 'witness', 'witness.yaml');
    assert.equal(local.operatorApi.host, host);
  }
  const both = await problemsOf(witness(witnessYaml((d) => { d.operatorApi = { auth: 'disabled', tokenFile: '/etc/pgvip/operator.token' }; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(both, 'witness.yaml', 'operatorApi.auth', 'contradicts operatorApi.tokenFile');
});

test('every problem in a file is reported in one pass, including cross-field ones', async () => {
  const text = agentYaml((d) => {
    d.logLevel = 'verbose';
    d.cluster.nodes[0].agent.port = 0;
    d.cluster.nodes[1].id = 'db-a';
    d.cluster.vip.interfce = 'eth1';
    d.cluster.timings = { leaseMs: 500 };
  });
  const lines = await problemsOf(agent(text), 'PGVIP_CONFIG_INVALID');
  lineAbout(lines, 'agent.yaml', 'logLevel', 'must be one of fatal, error, warn, info, debug, trace (got "verbose")');
  lineAbout(lines, 'agent.yaml', 'cluster.nodes[0].agent.port', '(got 0)');
  lineAbout(lines, 'agent.yaml', 'cluster.nodes[1].id', 'duplicates nodes[0].id');
  lineAbout(lines, 'agent.yaml', 'cluster.vip.interfce', 'did you mean "interface"?');
  lineAbout(lines, 'agent.yaml', 'cluster.timings.leaseMs', 'raise leaseMs to at least 657');
  // That leaseMs also leaves no room for the VIP move: a second problem at the same field.
  const vip = lines.filter((l) => l.startsWith('agent.yaml: cluster.timings.leaseMs: '));
  assert.ok(vip.some((l) => l.includes('raise leaseMs to at least 1566')), lines.join('\n'));
  assert.equal(lines.length, 6, lines.join('\n'));
});

test('copies of logical slots need the physical slots they travel through, and slot names PostgreSQL accepts', async () => {
  const noSlots = await problemsOf(agent(agentYaml((d) => { d.cluster.replication = { slots: { enabled: false }, logicalSlots: { copy: true } }; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(noSlots, 'agent.yaml', 'cluster.replication.logicalSlots.copy', 'needs replication.slots.enabled', 'enable slots, or set copy: false');
  const badName = await problemsOf(agent(agentYaml((d) => { d.cluster.replication = { logicalSlots: { copy: true, names: ['Orders-CDC'] } }; })), 'PGVIP_CONFIG_INVALID');
  lineAbout(badName, 'agent.yaml', 'cluster.replication.logicalSlots.names[0]', 'must be a replication slot name', '(got "Orders-CDC")');
  const ok = parseConfigText(agentYaml((d) => { d.cluster.replication = { logicalSlots: { copy: true, names: ['orders_cdc'] } }; }), 'agent', 'agent.yaml');
  assert.deepEqual(ok.cluster.replication.logicalSlots, { copy: true, names: ['orders_cdc'] });
});
