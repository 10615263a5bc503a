// Goal: postgresql.parameters reach a real PostgreSQL 15 as an operator expects. Both nodes (the
// standby too) get them with ALTER SYSTEM; a reloadable one takes effect at once; a restart-only one
// shows as pending restart in the agent's observation until PostgreSQL restarts; applying again
// changes nothing; a value PostgreSQL refuses is reported by name while the others are applied.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LocalPostgres } from '@pgvip/agent';
import { applyClusterParametersTo } from '../src/postgres/cluster-parameters.js';
import { resolvePostgresConfig } from '../src/postgres/config.js';
import { startPgCluster, type PgCluster } from '../../../test/fixtures/pg-cluster.js';

describe('Given a real primary with a streaming standby', () => {
  let cluster: PgCluster;
  before(async () => {
    cluster = await startPgCluster(undefined);
  });
  after(async () => {
    await cluster?.cleanup();
  });

  test('the parameters are applied on both nodes, a restart-only one waits for the restart, and a second run changes nothing', async () => {
    const parameters = { work_mem: '7MB', shared_buffers: '48MB', log_min_duration_statement: '250ms' };
    for (const node of [cluster.primary, cluster.standby]) {
      const config = resolvePostgresConfig(node.agentConfig);
      const first = await applyClusterParametersTo(config, parameters);
      assert.deepEqual([...first.changed].sort(), ['log_min_duration_statement', 'shared_buffers', 'work_mem']);
      assert.deepEqual(first.failed, []);
      assert.equal(await node.psql('SHOW work_mem'), '7MB', 'reloadable: in effect at once');
      assert.equal(await node.psql("SELECT pending_restart FROM pg_settings WHERE name = 'shared_buffers'"), 't');
      const observed = await new LocalPostgres(node.agentConfig).observe();
      assert.ok(observed.reachable && observed.pendingRestart === true, 'the agent sees the pending restart');
      const again = await applyClusterParametersTo(config, parameters);
      assert.deepEqual(again, { changed: [], failed: [] });
    }
  });

  test('a value PostgreSQL refuses is reported with its name and reason, and the others are applied', async () => {
    const config = resolvePostgresConfig(cluster.primary.agentConfig);
    const r = await applyClusterParametersTo(config, { work_mem: 'lots', maintenance_work_mem: '70MB', no_such_setting: '1' });
    assert.deepEqual(r.changed, ['maintenance_work_mem']);
    assert.deepEqual(r.failed.map((f) => f.name), ['work_mem', 'no_such_setting']);
    assert.match(r.failed[0]!.error, /invalid value for parameter "work_mem"/);
    assert.match(r.failed[1]!.error, /unrecognized configuration parameter "no_such_setting"/);
    assert.equal(await cluster.primary.psql('SHOW maintenance_work_mem'), '70MB');
  });
});
