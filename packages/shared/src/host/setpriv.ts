// Where setpriv (util-linux) is: the agent starts hook and re-seed programs through it so that they
// do not inherit its ambient CAP_NET_ADMIN (packages/agent/src/hooks/capabilities.ts), and the
// preflight refuses hooks on a host without it rather than finding out during a failover. Fixed
// paths, never PATH: the agent must not run whatever a writable PATH entry offers as "setpriv".
import { accessSync, constants } from 'node:fs';

export const setprivCandidates: readonly string[] = ['/usr/bin/setpriv', '/bin/setpriv'];

/** The first executable setpriv, or null. */
export function findSetpriv(candidates: readonly string[] = setprivCandidates): string | null {
  for (const file of candidates) {
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // Not here.
    }
  }
  return null;
}
