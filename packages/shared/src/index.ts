export * from './errors.js';
export * from './core/index.js';
export * from './config/index.js';
