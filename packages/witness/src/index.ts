// Public surface of the witness package (for the lab and integration tests; the daemon itself is
// started by main.ts, the operator CLI by cli/).
export { systemClock, type Clock } from './clock.js';
export { ClusterRunner, type ClusterRunnerDeps, type OperatorResult, type SendOutcome } from './cluster-runner.js';
export { createWitnessDaemon, type NotifierFactory, type WitnessDaemon, type WitnessDaemonDeps } from './daemon.js';
export { nullNotifier, type Notifier, type PgvipEvent } from './events.js';
export { openHistory, type History, type HistoryOptions, type HistoryQuery, type NewEvent } from './history.js';
export { createWitnessMetrics, type ClusterMetricsSnapshot, type WitnessMetrics } from './metrics.js';
export { probePostgres } from './pg-probe.js';
export { createPoller, type Poller, type PollerDeps } from './poller.js';
export { buildOperatorServer, buildServer, type OperatorServerDeps, type ProtocolServerDeps } from './server.js';
export { openWitnessStateStore, stateFileName, type WitnessStateStore } from './state-store.js';
export { clusterView, type ClusterView, type NodeView } from './view.js';
