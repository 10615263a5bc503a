export * from './errors.js';
export * from './core/index.js';
export * from './wire/index.js';
export * from './auth/index.js';
export * from './config/index.js';
export * from './state/index.js';
export * from './transport/index.js';
export * from './text/index.js';
