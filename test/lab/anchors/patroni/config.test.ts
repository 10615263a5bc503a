// Goal: the Patroni anchor's configuration is what its documentation asks for — the timings measured
// keep Patroni's rule loop_wait + 2 × retry_timeout ≤ ttl, synchronous mode is on, the VIP callback is
// wired to the role changes, each node names every etcd member — and the etcd members serve the v3
// JSON gateway Patroni talks to (off by default when etcd reads a config file).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import {
  fillTemplate,
  patroniDefaults,
  patroniFastest,
  renderEtcdYml,
  renderPatroniYml,
  timingProblems,
} from './config.js';
import { parsePatroniLog } from './patroni.js';

const members = [
  { name: 'db-a', address: '198.18.1.11' },
  { name: 'db-b', address: '198.18.1.12' },
  { name: 'witness', address: '198.18.2.20' },
];

interface Dcs {
  ttl: number;
  loop_wait: number;
  retry_timeout: number;
  synchronous_mode: boolean;
  synchronous_mode_strict: boolean;
  postgresql: { use_pg_rewind: boolean };
}

/** The parts of patroni.yml the tests read. */
interface PatroniYml {
  name: string;
  restapi: { connect_address: string };
  etcd3: { hosts: string };
  bootstrap: { dcs: Dcs };
  postgresql: { data_dir: string; parameters: Record<string, string>; callbacks: Record<string, string> };
}

function node(timings = patroniDefaults) {
  return {
    scope: 'lab',
    node: 'db-b',
    address: '198.18.1.12',
    hostDir: '/tmp/lab/hosts/db-b',
    dataDir: '/tmp/lab/hosts/db-b/pgdata',
    callback: '/tmp/lab/patroni-vip-callback.sh',
    etcd: members,
    timings,
    syncStrict: false,
  };
}

describe('Patroni anchor configuration', () => {
  it('measures the defaults and the fastest settings that keep the documented rule', () => {
    assert.deepEqual(patroniDefaults, { ttl: 30, loopWait: 10, retryTimeout: 10 });
    assert.deepEqual(timingProblems(patroniDefaults), []);
    assert.deepEqual(timingProblems(patroniFastest), []);
    assert.equal(patroniFastest.ttl, 20, 'ttl at its documented minimum');
    assert.equal(patroniFastest.loopWait + 2 * patroniFastest.retryTimeout, patroniFastest.ttl);
    assert.match(timingProblems({ ttl: 20, loopWait: 3, retryTimeout: 9 }).join(), /exceeds ttl 20/);
    assert.match(timingProblems({ ttl: 10, loopWait: 2, retryTimeout: 3 }).join(), /minimum of 20/);
    assert.throws(() => renderPatroniYml(node({ ttl: 20, loopWait: 10, retryTimeout: 10 })), /exceeds ttl/);
  });

  it('renders a patroni.yml with the timings, synchronous mode, the VIP callback and all etcd members', () => {
    const text = renderPatroniYml(node(patroniFastest));
    assert.doesNotMatch(text, /\{\{\w+\}\}/);
    const y = parse(text) as PatroniYml;
    assert.equal(y.name, 'db-b');
    assert.equal(y.restapi.connect_address, '198.18.1.12:8008');
    assert.equal(y.etcd3.hosts, '198.18.1.11:2379,198.18.1.12:2379,198.18.2.20:2379');
    const dcs = y.bootstrap.dcs;
    assert.deepEqual([dcs.ttl, dcs.loop_wait, dcs.retry_timeout], [20, 2, 9]);
    assert.equal(dcs.synchronous_mode, true);
    assert.equal(dcs.synchronous_mode_strict, false, "Patroni's default");
    assert.equal(dcs.postgresql.use_pg_rewind, true);
    assert.equal(y.postgresql.data_dir, '/tmp/lab/hosts/db-b/pgdata');
    assert.equal(y.postgresql.parameters['lab.node'], 'db-b');
    for (const cb of ['on_start', 'on_role_change', 'on_stop']) assert.equal(y.postgresql.callbacks[cb], '/tmp/lab/patroni-vip-callback.sh');
  });

  it('renders synchronous_mode_strict on for the strict setting', () => {
    const y = parse(renderPatroniYml({ ...node(), syncStrict: true })) as PatroniYml;
    assert.equal(y.bootstrap.dcs.synchronous_mode_strict, true);
    assert.equal(y.bootstrap.dcs.synchronous_mode, true);
  });

  it('renders each etcd member with the whole cluster and the v3 gateway on', () => {
    const y = parse(renderEtcdYml(members[2]!, members, '/tmp/lab/hosts/witness/etcd')) as Record<string, unknown>;
    assert.equal(y.name, 'witness');
    assert.equal(y['listen-peer-urls'], 'http://198.18.2.20:2380');
    assert.equal(y['initial-cluster'], 'db-a=http://198.18.1.11:2380,db-b=http://198.18.1.12:2380,witness=http://198.18.2.20:2380');
    assert.equal(y['enable-grpc-gateway'], true);
  });

  it('refuses a template field without a value', () => {
    assert.throws(() => fillTemplate('ttl: {{ttl}}', {}), /\{\{ttl\}\} has no value/);
  });

  it('reads the times of Patroni log lines and of the callback lines', () => {
    const lines = parsePatroniLog(
      '2026-12-07 02:15:45,670 INFO: promoted self to leader by acquiring session lock\n' +
        '1796609747433 vip-callback: VIP assigned to eni-0db0b0002\n{"lab":"supervisor"}\n',
    );
    assert.deepEqual(lines, [
      { atMs: Date.parse('2026-12-07T02:15:45.670Z'), msg: 'promoted self to leader by acquiring session lock' },
      { atMs: 1796609747433, msg: 'vip-callback: VIP assigned to eni-0db0b0002' },
    ]);
  });
});
