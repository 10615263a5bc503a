export * from './actions.js';
export * from './agent.js';
export * from './eligibility.js';
export * from './grantor.js';
export * from './messages.js';
export * from './terms.js';
export * from './timings.js';
export * from './witness.js';
