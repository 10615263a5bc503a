// The agent's side of the quorum on etcd (docs/design.md, Quorum on etcd).
export * from './port.js';
export * from './records.js';
export { clusterKeys, keyProblem, type ClusterKeys } from './keys.js';
export { EtcdQuorum, type EtcdQuorumOptions } from './client.js';
export { FakeEtcd, FakeEtcdQuorum } from './fake.js';
export { holderProblem } from './view.js';
export { EtcdQuorumBridge, type EtcdBridgeOptions } from './bridge.js';
// The witness daemon's side in etcd mode: an observer with the operator's txns.
export {
  type EndpointHealth, type EtcdObserverPort, type ForcedFailover, type SeedRequest, type SwitchoverRequest,
  seedProblem,
} from './operator.js';
export { EtcdObserver } from './observer.js';
export { FakeEtcdObserver } from './observer-fake.js';
