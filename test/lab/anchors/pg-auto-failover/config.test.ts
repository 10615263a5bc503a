// Goal: the pg_auto_failover anchor's settings are what config.ts says and keep the tool's safety
// constraints (an isolated primary stops before the promoted standby takes writes; a node is failed
// only after the health check had time to call it bad), the rendered files are complete and carry the
// measured values, the keeper's [timeout] section turns into the `pg_autoctl config set` calls that
// apply it, and the timeline reads pg_autoctl's and the hook's log lines. No lab: config only.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  configSetArgs,
  fillTemplate,
  healthCheckBadAfterMs,
  labPostgresqlConf,
  nodeConf,
  pgafDefaults,
  pgafFast,
  renderKeeperCfg,
  renderMonitorConf,
  settingsProblems,
} from './config.js';
import { parsePgAutoctlLog } from './pg-auto-failover.js';

/** `name = value` lines of a rendered postgresql.conf snippet. */
function settings(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([\w.]+)\s*=\s*(.+)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

describe('pg_auto_failover anchor: settings', () => {
  it('the defaults are pg_auto_failover 2.0 defaults (pg_autoctl(5)) and keep its constraints', () => {
    assert.deepEqual(settingsProblems(pgafDefaults), []);
    assert.equal(pgafDefaults.monitor.health_check_period, 5_000);
    assert.equal(pgafDefaults.monitor.node_considered_unhealthy_timeout, 20_000);
    assert.equal(pgafDefaults.monitor.primary_demote_timeout, 30_000);
    assert.equal(pgafDefaults.keeper.network_partition_timeout, 20);
  });

  it('the fast settings keep the constraints, and are faster than the defaults', () => {
    assert.deepEqual(settingsProblems(pgafFast), []);
    const opens = pgafFast.monitor.node_considered_unhealthy_timeout + pgafFast.monitor.primary_demote_timeout;
    assert.ok(opens > Math.max(pgafFast.keeper.network_partition_timeout, pgafFast.walSenderTimeout) * 1_000);
    assert.ok(healthCheckBadAfterMs(pgafFast.monitor) <= pgafFast.monitor.node_considered_unhealthy_timeout);
    const unhealthy = (s: typeof pgafFast) => s.monitor.node_considered_unhealthy_timeout;
    assert.ok(unhealthy(pgafFast) < unhealthy(pgafDefaults));
  });

  it('refuses a demote timeout that does not outlast the network partition timeout', () => {
    const unsafe = { ...pgafFast, keeper: { ...pgafFast.keeper, network_partition_timeout: 15 } };
    assert.match(settingsProblems(unsafe).join(), /primary_demote_timeout \(15000 ms\) must exceed/);
    assert.throws(() => renderMonitorConf(unsafe, 'x'), /must exceed/);
  });

  it('refuses a demote timeout that a walsender holding on to a cut standby outlasts', () => {
    const unsafe = { ...pgafFast, walSenderTimeout: 30 };
    assert.match(settingsProblems(unsafe).join(), /wal_sender_timeout \(30 s\)/);
  });

  it('refuses an unhealthy timeout shorter than the health check needs', () => {
    const unsafe = { ...pgafFast, monitor: { ...pgafFast.monitor, node_considered_unhealthy_timeout: 2_000 } };
    assert.match(settingsProblems(unsafe).join(), /needs 5000 ms to call a node bad/);
  });
});

describe('pg_auto_failover anchor: rendered files', () => {
  it("monitor.conf sets every pgautofailover.* value measured, and nothing is left unfilled", () => {
    const text = renderMonitorConf(pgafFast, 'fast');
    assert.doesNotMatch(text, /\{\{/);
    const s = settings(text);
    for (const [k, v] of Object.entries(pgafFast.monitor)) assert.equal(s[`pgautofailover.${k}`], String(v), k);
  });

  it("keeper.cfg is a [timeout] section, applied by one `pg_autoctl config set` per value", () => {
    const text = renderKeeperCfg(pgafFast, 'fast');
    assert.match(text, /^\[timeout\]$/m);
    assert.deepEqual(configSetArgs(text), [
      ['timeout.network_partition_timeout', '5'],
      ['timeout.postgresql_restart_failure_timeout', '20'],
      ['timeout.postgresql_restart_failure_max_retries', '3'],
    ]);
  });

  it('configSetArgs refuses a line it cannot read rather than skipping it', () => {
    assert.throws(() => configSetArgs('[timeout]\nnetwork_partition_timeout 5\n'), /cannot read/);
    assert.throws(() => configSetArgs('network_partition_timeout = 5\n'), /cannot read/);
  });

  it('the lab conf includes the per-host node.conf last, which names the node and its own socket', () => {
    const conf = labPostgresqlConf(pgafFast).trim().split('\n');
    assert.equal(conf.at(-1), "include_if_exists = '../node.conf'");
    assert.equal(settings(labPostgresqlConf(pgafFast)).shared_buffers, "'32MB'");
    assert.equal(settings(labPostgresqlConf(pgafFast)).wal_sender_timeout, "'5s'");
    assert.equal(settings(labPostgresqlConf(pgafDefaults)).wal_sender_timeout, "'30s'");
    assert.deepEqual(settings(nodeConf('db-b', '/tmp/x/run')), { unix_socket_directories: "'/tmp/x/run'", 'lab.node': "'db-b'" });
  });

  it('fillTemplate names a field without a value', () => {
    assert.throws(() => fillTemplate('a {{b}}', {}), /\{\{b\}\} has no value/);
  });
});

describe('pg_auto_failover anchor: logs', () => {
  it("reads pg_autoctl's time-of-day lines on the fault's day, and the hook's epoch lines", () => {
    const day = Date.parse('2026-12-07T02:19:00Z');
    const lines = parsePgAutoctlLog(
      ['02:19:06 25686 INFO  Promoting postgres', '1796609946123 vip-hook: VIP assigned to eni-0db0b0002', 'noise'].join('\n'),
      day,
    );
    assert.deepEqual(lines, [
      { atMs: Date.parse('2026-12-07T02:19:06Z'), msg: 'Promoting postgres' },
      { atMs: 1796609946123, msg: 'vip-hook: VIP assigned to eni-0db0b0002' },
    ]);
  });
});
