// PostgreSQL port
export * from './postgres/port.js';
export * from './postgres/lsn.js';
export { LocalPostgres } from './postgres/local-postgres.js';
export { FakePostgres, FakePgNetwork } from './postgres/fake.js';
export { resolvePostgresConfig, defaultPostgresTimeouts, type LocalPostgresConfig, type PostgresTimeouts, type ResolvedPostgresConfig } from './postgres/config.js';
export { managedSettings, type ManagedSetting } from './postgres/managed-settings.js';
