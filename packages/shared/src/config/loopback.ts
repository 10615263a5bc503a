import { isIP } from 'node:net';

/**
 * Whether a configured host is this machine's loopback: `localhost`, `::1` or a literal IPv4
 * address in 127.0.0.0/8. A name that merely starts with "127." (127.0.0.1.example.com) resolves
 * anywhere, so it is not loopback: settings that are safe only on loopback (plain HTTP for the
 * operator token, auth disabled) must not accept it.
 */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}
