// Programs the agent starts for the operator (hooks, re-seed commands) run without its capabilities.
// The unit gives the agent CAP_NET_ADMIN as an *ambient* capability, so that `ip addr` works without
// root, and ambient capabilities pass across execve: a PgBouncer-reload script would otherwise be able
// to rewrite the host's addresses and routes. setpriv clears the ambient and inheritable sets and
// then execs the program; lowering one's own capabilities needs no privilege (NoNewPrivileges too).
// When the agent holds no ambient capability (run by hand, in tests) the program starts directly.
import { readFileSync } from 'node:fs';
import { findSetpriv } from '@pgvip/shared';

/** The ambient capability set from a /proc/<pid>/status text (0 when the kernel shows none). */
export function ambientCapabilities(status: string): bigint {
  const m = /^CapAmb:\s*([0-9a-f]+)\s*$/m.exec(status);
  return m === null ? 0n : BigInt(`0x${m[1]}`);
}

function ownAmbientCapabilities(): bigint {
  try {
    return ambientCapabilities(readFileSync('/proc/self/status', 'utf8'));
  } catch {
    return 0n;
  }
}

export type UnprivilegedCommand =
  | { readonly ok: true; readonly argv: readonly string[] }
  | { readonly ok: false; readonly why: string };

/**
 * The argv that runs `argv` without the agent's ambient capabilities. Not ok (and nothing may run)
 * when the agent holds some and setpriv is missing: running the program with them is the risk this
 * exists to remove, and the preflight already refuses hooks on such a host.
 */
export function withoutCapabilities(
  argv: readonly string[],
  ambient: bigint = ownAmbientCapabilities(),
  setpriv: string | null = findSetpriv(),
): UnprivilegedCommand {
  if (ambient === 0n) return { ok: true, argv };
  if (setpriv === null) {
    return { ok: false, why: 'setpriv (util-linux) was not found in /usr/bin or /bin: it is needed to start this program without the agent\'s CAP_NET_ADMIN; install util-linux' };
  }
  return { ok: true, argv: [setpriv, '--ambient-caps=-all', '--inh-caps=-all', '--', ...argv] };
}
