// Goal: the etcd quorum port keeps one leader per term on a real etcd, and the fake keeps the same
// contract, so tests built on the fake mean something (docs/design.md, Quorum on etcd).
import { after, before, describe } from 'node:test';
import { Etcd3 } from 'etcd3';
import { EtcdQuorum, FakeEtcd, FakeEtcdQuorum } from '../src/quorum/etcd/index.js';
import { etcdMissing, startEtcdCluster, type EtcdCluster } from '../../../test/fixtures/etcd-cluster.js';
import { etcdQuorumContract, prefix } from './etcd-quorum-contract.js';

const clock = () => performance.now();

const fake = new FakeEtcd(clock);
etcdQuorumContract('FakeEtcdQuorum', () => ({
  port: (cluster) => new FakeEtcdQuorum(fake, { prefix, cluster, timeoutMs: 400, clock }),
  putRaw: (key, value) => Promise.resolve(fake.putRaw(key, value)),
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
  etcdQuorumContract('EtcdQuorum', () => ({
    port: (cluster) => new EtcdQuorum({ endpoints: etcd.endpoints, prefix, cluster, timeoutMs: 400 }),
    putRaw: async (key, value) => {
      await raw.put(key).value(value);
    },
  }));
});
