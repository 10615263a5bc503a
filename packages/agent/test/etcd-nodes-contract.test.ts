// Goal: the etcd records and txns for N database nodes (grantors, the sync claim, the reset record,
// final positions and the campaign's compares on them) hold on a real etcd, and the fake keeps the
// same contract (docs/design.md, "More than one standby").
import { after, before, describe } from 'node:test';
import { Etcd3 } from 'etcd3';
import { EtcdObserver, EtcdQuorum, FakeEtcd, FakeEtcdObserver, FakeEtcdQuorum } from '../src/quorum/etcd/index.js';
import { etcdMissing, startEtcdCluster, type EtcdCluster } from '../../../test/fixtures/etcd-cluster.js';
import { etcdNodesContract, prefix } from './etcd-nodes-contract.js';

const clock = () => performance.now();

const fake = new FakeEtcd(clock);
etcdNodesContract('FakeEtcdQuorum', () => ({
  port: (cluster) => new FakeEtcdQuorum(fake, { prefix, cluster, timeoutMs: 400, clock }),
  observer: (cluster) => new FakeEtcdObserver(fake, { prefix, cluster, timeoutMs: 400, clock }),
  putRaw: (key, value) => Promise.resolve(fake.putRaw(key, value)),
  getRaw: (key) => Promise.resolve(fake.get(key)),
}));

describe('against a real three-member etcd', { skip: etcdMissing(), timeout: 120_000 }, () => {
  let etcd: EtcdCluster;
  let raw: Etcd3;
  before(async () => {
    etcd = await startEtcdCluster(undefined);
    raw = new Etcd3({ hosts: [...etcd.endpoints] });
  });
  after(async () => {
    raw.close();
    await etcd.cleanup();
  });
  etcdNodesContract('EtcdQuorum', () => ({
    port: (cluster) => new EtcdQuorum({ endpoints: etcd.endpoints, prefix, cluster, timeoutMs: 400 }),
    observer: (cluster) => new EtcdObserver({ endpoints: etcd.endpoints, prefix, cluster, timeoutMs: 400 }),
    putRaw: async (key, value) => {
      await raw.put(key).value(value);
    },
    getRaw: (key) => raw.get(key).buffer(),
  }));
});
