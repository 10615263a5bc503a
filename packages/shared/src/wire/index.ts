export * from './lsn.js';
export * from './fields.js';
export * from './messages.js';
export * from './codec.js';
export * from './endpoints.js';
export type { Equals, Expect } from './exact.js';
export * from './agent-events.js';
