export * from './peer-client.js';
export * from './protocol-routes.js';
