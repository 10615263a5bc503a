export * from './setpriv.js';
