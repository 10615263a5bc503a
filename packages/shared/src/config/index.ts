// Public surface of the configuration module.
export {
  AgentConfigSchema,
  ClusterConfigSchema,
  WitnessConfigSchema,
  logLevels,
  type AgentConfig,
  type ClusterConfig,
  type NodeConfig,
  type NotificationsConfig,
  type VipConfig,
  type WitnessConfig,
} from './schema.js';
export { TimingsSchema } from './timings-schema.js';
export {
  QuorumSchema,
  etcdDefaultPrefix,
  etcdEndpointsMax,
  parseEtcdEndpoint,
  quorumBackends,
  quorumTimingsOf,
  type EtcdConfig,
  type QuorumBackend,
  type QuorumConfig,
} from './quorum-schema.js';
export { HooksSchema, type AgentHooksConfig } from './hooks-schema.js';
export { RejoinSchema, reseedPlaceholders, type AgentRejoinConfig, type ReseedPlaceholder } from './rejoin-schema.js';
export { notificationEventNames, notificationEvents, type NotificationEventName } from './events.js';
export { formatConfigError, loadAgentConfig, loadWitnessConfig, parseConfigText, type ConfigKind, type ConfigOf } from './load.js';
export { readSecretFile } from './secret-file.js';
export { shellUnsafePathProblem } from './fields.js';
export { agentPreflight, witnessPreflight, type PreflightOptions } from './preflight.js';
export { configReferenceCommand, configReferencePath, describeConfigSchema } from './reference.js';
