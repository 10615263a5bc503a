// Goal: `pgvip failover --force --accept-data-loss --stop-old-primary <instance>` stops the old
// primary's EC2 instance first (StopInstances with Force, through the real SDK to the EC2 emulator),
// then asks the witness, which records the stop with the failover in its history; a stop EC2 refuses
// (IAM) asks for no failover at all. The id is checked first (DescribeNetworkInterfaces): an instance
// that EC2 does not show holding the old primary's address, or that is the promoted node's, is
// refused with PGVIP_OPERATOR_INSTANCE_MISMATCH and nothing is stopped. Before the stop the witness
// checks the failover (it changes nothing): one it would refuse stops nothing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { PROTOCOL_VERSION, type LeaseRequest } from '@pgvip/shared';
import { startEc2Emulator, type Ec2Emulator } from '../../../test/ec2-emulator/index.js';
import { findInstance } from '../../../test/ec2-emulator/model.js';
import { accountId, baseConfig, dbA, dbB, other, region, testSecretAccessKey } from '../../../test/ec2-emulator/fixtures.js';
import { runPgvip } from './cli-helpers.js';
import { mainCluster, startFakeOperatorApi, type FakeOperatorApi } from './fake-operator-api.js';
import { agentStatus, manualClock, startDaemon, tempDir, witnessConfig } from './witness-helpers.js';

const policy = JSON.parse(
  readFileSync(path.resolve(import.meta.dirname, '../../../deploy/iam/operator-stop-instance.json'), 'utf8')
    .replaceAll('<region>', region)
    .replaceAll('<account>', accountId)
    .replaceAll('<cluster>', 'main'),
);

async function emulator(t: TestContext, dbATag: string): Promise<Ec2Emulator> {
  const ec2 = await startEc2Emulator(
    baseConfig({
      instances: [
        { id: dbA.instanceId, tags: { 'pgvip:cluster': dbATag, 'pgvip:role': 'database' } },
        { id: dbB.instanceId, tags: { 'pgvip:cluster': 'main', 'pgvip:role': 'database' } },
        { id: other.instanceId, tags: { 'pgvip:cluster': 'main', 'pgvip:role': 'database' } },
      ],
      iam: { accessKeys: { AKIDOPERATOR0001: { secretAccessKey: testSecretAccessKey, user: 'operator', policy } } },
    }),
  );
  t.after(() => ec2.close());
  return ec2;
}

/** The failovers the CLI asked for: the POSTs other than the check before the stop. */
const failoversAsked = (api: FakeOperatorApi) =>
  api.requests.filter((q) => q.method === 'POST' && (q.body as { check?: boolean }).check !== true);

const awsEnv = { AWS_ACCESS_KEY_ID: 'AKIDOPERATOR0001', AWS_SECRET_ACCESS_KEY: testSecretAccessKey, AWS_EC2_METADATA_DISABLED: 'true' };

describe('pgvip failover --stop-old-primary', { timeout: 120_000 }, () => {
  it('stops the old primary\'s instance with Force, then asks for the failover with the stop in the request', async (t) => {
    const ec2 = await emulator(t, 'main');
    const api = await startFakeOperatorApi();
    t.after(() => api.close());
    const r = await runPgvip(
      ['--witness', api.url, 'failover', '--force', '--accept-data-loss', '--stop-old-primary', dbA.instanceId, '--region', region, '--ec2-endpoint', ec2.url],
      { env: awsEnv },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(findInstance(ec2.state.control, dbA.instanceId)?.state, 'stopped');
    assert.match(r.stdout, /^✔ instance i-0aaa of db-a stopped through EC2 with Force \(running → stopping\)\n✔ failover main: db-b promoted/);
    const posts = api.requests.filter((q) => q.method === 'POST');
    assert.deepEqual(posts.map((p) => p.body), [
      { acceptDataLoss: true, check: true },
      { acceptDataLoss: true, stoppedInstance: { instanceId: dbA.instanceId, node: 'db-a', previousState: 'running', currentState: 'stopping' } },
    ]);
  });

  it('stops nothing when the witness would refuse the failover: it is asked before the stop', async (t) => {
    const ec2 = await emulator(t, 'main');
    const api = await startFakeOperatorApi();
    t.after(() => api.close());
    // As an observer on etcd answers while it cannot reach etcd: its view is cached, a failover needs a fresh read.
    api.refuseFailover = { message: 'etcd did not answer: all 3 endpoints unreachable' };
    const r = await runPgvip(
      ['--witness', api.url, 'failover', '--force', '--accept-data-loss', '--stop-old-primary', dbA.instanceId, '--region', region, '--ec2-endpoint', ec2.url],
      { env: awsEnv },
    );
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /etcd did not answer: all 3 endpoints unreachable; the failover would be refused, so nothing was stopped and no failover was asked for/);
    assert.equal(findInstance(ec2.state.control, dbA.instanceId)?.state, 'running', 'the old primary was stopped for a failover the witness refused');
    assert.deepEqual(ec2.requests({ action: 'StopInstances' }), []);
    assert.deepEqual(api.requests.filter((q) => q.method === 'POST').map((p) => p.body), [{ acceptDataLoss: true, check: true }]);
  });

  it('a refusal between the check and the ask says the instance is stopped and what to run next', async (t) => {
    const ec2 = await emulator(t, 'main');
    const api = await startFakeOperatorApi();
    t.after(() => api.close());
    api.refuseFailover = { message: 'the forced failover txn was refused: the term record changed meanwhile', checkPasses: true };
    const r = await runPgvip(
      ['--witness', api.url, 'failover', '--to', 'db-b', '--force', '--accept-data-loss', '--stop-old-primary', dbA.instanceId, '--region', region, '--ec2-endpoint', ec2.url],
      { env: awsEnv },
    );
    assert.equal(r.code, 1, r.stdout);
    assert.equal(findInstance(ec2.state.control, dbA.instanceId)?.state, 'stopped');
    assert.match(
      r.stderr,
      /the term record changed meanwhile\. Instance i-0aaa of db-a IS STOPPED \(it keeps its EBS volumes\) and no failover happened: once the cause is fixed, run pgvip failover --to db-b --force --accept-data-loss without --stop-old-primary/,
    );
  });

  it('a witness that cannot check first (older than the CLI) gets no stop', async (t) => {
    const ec2 = await emulator(t, 'main');
    const api = await startFakeOperatorApi();
    t.after(() => api.close());
    api.failoverWithoutCheck = true;
    const r = await runPgvip(
      ['--witness', api.url, 'failover', '--force', '--accept-data-loss', '--stop-old-primary', dbA.instanceId, '--region', region, '--ec2-endpoint', ec2.url],
      { env: awsEnv },
    );
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /the witness cannot check a forced failover before the stop \(it is older than this pgvip\); nothing was stopped/);
    assert.equal(findInstance(ec2.state.control, dbA.instanceId)?.state, 'running');
  });

  it('asks for no failover when EC2 refuses the stop, and says which permission is missing', async (t) => {
    const ec2 = await emulator(t, 'billing'); // db-a's instance is not tagged for this cluster
    const api = await startFakeOperatorApi();
    t.after(() => api.close());
    const r = await runPgvip(
      ['--witness', api.url, 'failover', '--force', '--accept-data-loss', '--stop-old-primary', dbA.instanceId, '--region', region, '--ec2-endpoint', ec2.url],
      { env: awsEnv },
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /instance i-0aaa was not stopped \(UnauthorizedOperation: .*\): these credentials may not stop it; grant ec2:StopInstances as in deploy\/iam\/operator-stop-instance\.json; no failover was asked for/);
    assert.equal(findInstance(ec2.state.control, dbA.instanceId)?.state, 'running');
    assert.deepEqual(failoversAsked(api), [], 'a check is no failover; nothing else was posted');
    const malformed = await runPgvip(['--witness', api.url, 'failover', '--force', '--accept-data-loss', '--stop-old-primary', 'db-a']);
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /not an EC2 instance id/);
  });

  it('refuses, and stops nothing, when the instance is not shown to be the old primary\'s', async (t) => {
    const ec2 = await emulator(t, 'main');
    // [instance given, how the witness shows the nodes, what the refusal says]
    const withIds = mainCluster();
    const cases: [string, ReturnType<typeof mainCluster>, RegExp][] = [
      [dbB.instanceId, mainCluster(), /EC2 shows it holding 198\.18\.1\.11, an address of db-b, the node being promoted/],
      [other.instanceId, mainCluster(), /it has the addresses 198\.18\.1\.20, and none is the old primary db-a's \(198\.18\.1\.10\)/],
      ['i-0eee', mainCluster(), /it has no network interface in EC2 \(is the id right, and in this region\?\)/],
      [
        other.instanceId,
        { ...withIds, nodes: withIds.nodes.map((n) => ({ ...n, instanceId: n.node === 'db-a' ? dbA.instanceId : dbB.instanceId })) },
        /the cluster config gives the old primary db-a's instance as i-0aaa/,
      ],
      [
        dbB.instanceId,
        { ...withIds, nodes: withIds.nodes.map((n) => ({ ...n, hosts: [], instanceId: n.node === 'db-b' ? dbB.instanceId : null })) },
        /the cluster config gives it as db-b's instance, the node being promoted, not the old primary db-a's/,
      ],
      [dbA.instanceId, { ...withIds, primary: null }, /the witness knows no primary of the cluster/],
      [
        dbA.instanceId,
        { ...withIds, nodes: withIds.nodes.map(({ hosts: _h, instanceId: _i, ...n }) => n) as never },
        /the witness does not report where its nodes are \(it is older than this pgvip\); upgrade the witness/,
      ],
    ];
    for (const [instance, view, why] of cases) {
      const api = await startFakeOperatorApi({ clusters: [view] });
      t.after(() => api.close());
      const r = await runPgvip(
        ['--witness', api.url, '--json', 'failover', '--force', '--accept-data-loss', '--stop-old-primary', instance, '--region', region, '--ec2-endpoint', ec2.url],
        { env: awsEnv },
      );
      assert.equal(r.code, 1, `${instance}: ${r.stdout}${r.stderr}`);
      const error = (JSON.parse(r.stdout) as { error: { code: string; message: string } }).error;
      assert.equal(error.code, 'PGVIP_OPERATOR_INSTANCE_MISMATCH', error.message);
      assert.match(error.message, why);
      assert.match(error.message, /nothing was stopped and no failover was asked for/);
      assert.deepEqual(failoversAsked(api), [], 'a check is no failover; nothing else was posted');
    }
    for (const id of [dbA.instanceId, dbB.instanceId, other.instanceId]) assert.equal(findInstance(ec2.state.control, id)?.state, 'running', id);
    assert.deepEqual(ec2.requests({ action: 'StopInstances' }), [], 'no stop was even asked for');
  });

  it('the witness records the stop with the forced failover, and refuses a malformed one', async (t) => {
    const token = 'operator-token-0123456789';
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const daemon = await startDaemon(t, witnessConfig({ stateDir: tempDir(t), token, clusters: [{ name: 'c1' }] }), { clock: manualClock() });
    const c1 = daemon.runners.get('c1')!;
    c1.poll('db-a', agentStatus('c1', 'db-a'), true);
    c1.poll('db-b', agentStatus('c1', 'db-b'), true);
    const lease: LeaseRequest = { v: PROTOCOL_VERSION, cluster: 'c1', term: 1, from: 'db-a', kind: 'lease-request', seq: 1, lsn: 0x3000060n, timeline: 1, syncStandby: null };
    c1.request(lease);
    const post = (body: unknown) => daemon.operator.inject({ method: 'POST', url: '/api/v1/clusters/c1/failover', headers: auth, payload: JSON.stringify(body) });
    for (const stoppedInstance of [{ instanceId: 'db-a', node: 'db-a', previousState: 'running', currentState: 'stopping' }, { instanceId: 'i-0aaa', node: 'db-z', previousState: 'running', currentState: 'stopping' }, { instanceId: 'i-0aaa', node: null, previousState: 'gone', currentState: 'stopping' }, { instanceId: 'i-0aaa', extra: 1 }]) {
      const res = await post({ to: 'db-b', acceptDataLoss: true, stoppedInstance });
      assert.equal(res.statusCode, 400, JSON.stringify(stoppedInstance));
      assert.match(res.json().error.message, /stoppedInstance: /);
    }
    // The check (before the stop) is the core's verdict, and changes nothing: no term, no history.
    const check = await post({ to: 'db-b', acceptDataLoss: true, check: true });
    assert.equal(check.statusCode, 200, check.body);
    assert.match(check.json().message, /forcing db-b to primary in term 2 \(data loss accepted\)/);
    assert.equal(c1.term, 1);
    assert.equal((await post({ acceptDataLoss: true, check: true, stoppedInstance: { instanceId: 'i-0aaa', node: 'db-a', previousState: 'running', currentState: 'stopping' } })).statusCode, 400);
    const res = await post({ to: 'db-b', acceptDataLoss: true, stoppedInstance: { instanceId: 'i-0aaa', node: 'db-a', previousState: 'running', currentState: 'stopping' } });
    assert.equal(res.statusCode, 200, res.body);
    await daemon.history.flush();
    const events = (await daemon.operator.inject({ method: 'GET', url: '/api/v1/clusters/c1/history?limit=3', headers: { authorization: auth.authorization } })).json().events as { type: string; detail: string }[];
    assert.equal(events.filter((e) => e.type === 'operator-command').length, 1, 'the check is not recorded');
    const command = events.find((e) => e.type === 'operator-command');
    assert.match(command?.detail ?? '', /forced failover to db-b \(data loss accepted; instance i-0aaa of db-a stopped through EC2 with Force \(running → stopping\)\): accepted/);
  });
});
