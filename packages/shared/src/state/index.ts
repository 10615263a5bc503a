export * from './durable-file.js';
export * from './schemas.js';
export * from './state-dir.js';
