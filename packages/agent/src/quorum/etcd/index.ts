// The agent's side of the quorum on etcd (docs/design.md, Quorum on etcd).
export * from './port.js';
export * from './records.js';
export { clusterKeys, keyProblem, type ClusterKeys } from './keys.js';
export { EtcdQuorum, type EtcdQuorumOptions } from './client.js';
export { FakeEtcd, FakeEtcdQuorum } from './fake.js';
export { holderProblem } from './view.js';
export { EtcdQuorumBridge, type EtcdBridgeOptions } from './bridge.js';
