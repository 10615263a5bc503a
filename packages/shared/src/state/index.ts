export * from './durable-file.js';
export * from './schemas.js';
