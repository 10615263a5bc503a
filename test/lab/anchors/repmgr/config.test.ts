// Goal: the repmgr anchor's repmgr.conf is what repmgr's documentation asks for — automatic failover
// through the promote_command wrapper, follow_command for the witness and standbys, the measured
// repmgrd timings (defaults as documented, the fast ones shorter with primary_visibility_consensus
// on) — every field filled, a path that would break repmgr's quoting refused, and repmgrd's log
// lines read for the timeline. No lab: config only.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  electionAfterSecs,
  labPostgresqlConf,
  parseRepmgrConf,
  renderRepmgrConf,
  repmgrDefaults,
  repmgrFast,
  settingsProblems,
  type RepmgrNode,
} from './config.js';
import { parseRepmgrdLog } from './repmgr.js';

const node: RepmgrNode = {
  nodeId: 2,
  nodeName: 'db-b',
  address: '198.18.1.12',
  dataDir: '/tmp/lab/hosts/db-b/pgdata',
  pgLog: '/tmp/lab/hosts/db-b/postgresql-pgdata.log',
  configFile: '/tmp/lab/hosts/db-b/repmgr.conf',
  promoteCommand: '/tmp/lab/repmgr-promote.sh',
  pidFile: '/tmp/lab/hosts/db-b/repmgrd.pid',
};

describe('repmgr anchor: repmgr.conf', () => {
  it('names the node, connects over TCP as the repmgr user, and fails over through the wrapper', () => {
    const text = renderRepmgrConf(node, repmgrFast, 'fast');
    assert.doesNotMatch(text, /\{\{/);
    const c = parseRepmgrConf(text);
    assert.equal(c.node_id, '2');
    assert.equal(c.node_name, 'db-b');
    assert.equal(c.conninfo, 'host=198.18.1.12 port=5432 user=repmgr dbname=repmgr connect_timeout=2');
    assert.equal(c.data_directory, node.dataDir);
    assert.equal(c.failover, 'automatic');
    assert.equal(c.promote_command, `${node.promoteCommand} ${node.configFile}`);
    assert.match(c.follow_command!, /standby follow -f \/tmp\/lab\/hosts\/db-b\/repmgr.conf --upstream-node-id=%n$/);
    assert.match(c.service_start_command!, /pg_ctl start -D \/tmp\/lab\/hosts\/db-b\/pgdata -w -l /);
  });

  it('carries the measured repmgrd settings: the documented defaults, and the fast ones', () => {
    const d = parseRepmgrConf(renderRepmgrConf(node, repmgrDefaults, 'defaults'));
    assert.deepEqual(
      [
        d.monitor_interval_secs,
        d.connection_check_type,
        d.reconnect_attempts,
        d.reconnect_interval,
        d.primary_visibility_consensus,
      ],
      ['2', 'ping', '6', '10', 'false'],
    );
    const f = parseRepmgrConf(renderRepmgrConf(node, repmgrFast, 'fast'));
    assert.equal(f.primary_visibility_consensus, 'true');
    assert.ok(electionAfterSecs(repmgrFast) < electionAfterSecs(repmgrDefaults));
    assert.equal(electionAfterSecs(repmgrDefaults), 60);
  });

  it('refuses settings repmgr would reject, and a path that would end its quoting early', () => {
    assert.match(settingsProblems({ ...repmgrFast, reconnect_interval: 0 }).join(), /reconnect_interval must be a positive/);
    assert.throws(() => renderRepmgrConf(node, { ...repmgrFast, reconnect_attempts: 0 }, 'x'), /reconnect_attempts/);
    assert.throws(() => renderRepmgrConf({ ...node, dataDir: "/tmp/it's" }, repmgrFast, 'x'), /single quote/);
  });

  it("the lab's postgresql.conf loads repmgr's library, keeps pg_rewind possible, and includes node.conf last", () => {
    const conf = labPostgresqlConf();
    assert.match(conf, /^shared_preload_libraries = 'repmgr'$/m);
    assert.match(conf, /^wal_log_hints = on$/m);
    assert.equal(conf.trim().split('\n').at(-1), "include_if_exists = '../node.conf'");
  });
});

describe('repmgr anchor: logs', () => {
  it("reads repmgrd's bracketed UTC timestamps and the wrapper's epoch lines", () => {
    const lines = parseRepmgrdLog(
      [
        '[2026-12-07 02:10:59] [NOTICE] this node is the winner, will now promote itself and inform other nodes',
        '1796609460123 promote.sh: VIP assigned to eni-0db0b0002',
        '  "/usr/lib/postgresql/15/bin/repmgr standby promote"',
      ].join('\n'),
    );
    assert.deepEqual(lines, [
      { atMs: Date.parse('2026-12-07T02:10:59Z'), msg: 'this node is the winner, will now promote itself and inform other nodes' },
      { atMs: 1796609460123, msg: 'promote.sh: VIP assigned to eni-0db0b0002' },
    ]);
  });
});
