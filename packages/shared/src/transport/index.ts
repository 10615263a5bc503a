export * from './peer-client.js';
export * from './protocol-routes.js';
export * from './rate-limited-log.js';
export * from './server-limits.js';
export * from './reply-body.js';
export * from './tls.js';
export * from './agent-events-route.js';
export * from './etcd-client-files.js';
