export * from './setpriv.js';
export * from './sighup.js';
