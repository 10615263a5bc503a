// PostgreSQL port
export * from './postgres/port.js';
export * from './postgres/lsn.js';
export { LocalPostgres } from './postgres/local-postgres.js';
export { FakePostgres, FakePgNetwork, type FakeClientWrite } from './postgres/fake.js';
export { resolvePostgresConfig, defaultPostgresTimeouts, type LocalPostgresConfig, type PostgresTimeouts, type ResolvedPostgresConfig } from './postgres/config.js';
export { managedSettings, type ManagedSetting } from './postgres/managed-settings.js';
// VIP port
export { placementOf, type VipPlacement, type VipPort } from './vip/port.js';
export { FakeVipCloud, FakeVipPort, type FakeVipCall, type FakeVipFault, type FakeVipOperation } from './vip/fake.js';
export { createVipPort, defaultVipTimeouts, Ec2VipPort, vipPortConfigOf, type VipPortConfig, type VipPortOptions, type VipTimeouts } from './vip/ec2-vip.js';
export { discoverVipTarget, type NodeVipConfig, type VipTarget } from './vip/discovery.js';
export { defaultImdsEndpoint, httpExchange, ImdsClient, type ImdsClientOptions, type ImdsExchange, type ImdsReply } from './vip/imds.js';
export { OsAddress, runCommand, type CommandOutcome, type OsAddressOptions, type RunCommand } from './vip/os-address.js';
export { classifyEc2Error, defaultRetryPolicy, Ec2CallError, type Ec2Failure, type FailureKind, type RetryPolicy } from './vip/ec2-call.js';
