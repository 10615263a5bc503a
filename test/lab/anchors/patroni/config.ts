// Patroni's and etcd's configuration for the lab, rendered from the readable templates next to this
// file (patroni.yml, etcd.yml) with each host's addresses and paths, and the two settings measured:
//
//   defaults  ttl 30, loop_wait 10, retry_timeout 10: what Patroni uses when they are not set (its
//             "Dynamic Configuration Settings" page lists them as the defaults).
//   fast      ttl 20, loop_wait 2, retry_timeout 9: its documented fastest safe settings. The same page
//             gives ttl's minimum as 20 and the rule `loop_wait + 2 * retry_timeout <= ttl` (the leader
//             must be able to retry the DCS for retry_timeout, twice within one lease, plus one loop,
//             before its key expires, or it could still act as primary after the lock has gone). A
//             failover waits for the leader key to expire, so ttl sets the failover time; at the
//             minimum ttl a short loop_wait (2 s) lets the replica react soon after, and the rest of
//             the budget goes to retry_timeout (2 + 2 × 9 = 20), so a DCS or PostgreSQL hiccup of up
//             to 9 s does not demote the primary.
//
// Beside the timings, synchronous_mode_strict (off by default, as at both settings above; on in the
// "patroni-strict" system, at the default timings). Patroni's "Replication modes" page
// (https://patroni.readthedocs.io/en/latest/replication_modes.html, "Synchronous mode"): with it off, a
// primary whose synchronous standby is gone turns synchronous replication off and goes on acknowledging
// alone; with it on, it keeps synchronous_standby_names set and every write waits until a standby is
// back ("effectively blocking all clients from writing to the primary"), so no acknowledged write
// exists on one node only. With two nodes, losing either one stops writes.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { renderEtcdYml, type EtcdMember } from '../../etcd.js';
import { fillTemplate } from '../../template.js';

const here = path.dirname(new URL(import.meta.url).pathname);

export interface PatroniTimings {
  readonly ttl: number;
  readonly loopWait: number;
  readonly retryTimeout: number;
}

export const patroniDefaults: PatroniTimings = { ttl: 30, loopWait: 10, retryTimeout: 10 };
export const patroniFastest: PatroniTimings = { ttl: 20, loopWait: 2, retryTimeout: 9 };

/**
 * Checks Patroni's documented constraints on its timings (docs: "Dynamic Configuration Settings"):
 * ttl ≥ 20, loop_wait ≥ 1, retry_timeout ≥ 3, and loop_wait + 2 × retry_timeout ≤ ttl.
 */
export function timingProblems(t: PatroniTimings): string[] {
  const problems: string[] = [];
  if (t.ttl < 20) problems.push(`ttl ${t.ttl} is below Patroni's minimum of 20`);
  if (t.loopWait < 1) problems.push(`loop_wait ${t.loopWait} is below Patroni's minimum of 1`);
  if (t.retryTimeout < 3) problems.push(`retry_timeout ${t.retryTimeout} is below Patroni's minimum of 3`);
  if (t.loopWait + 2 * t.retryTimeout > t.ttl) {
    problems.push(`loop_wait + 2 × retry_timeout = ${t.loopWait + 2 * t.retryTimeout} exceeds ttl ${t.ttl}`);
  }
  return problems;
}

// The etcd members are the lab's shared three-member cluster (test/lab/etcd.ts, which also uses it
// for pgvip's etcd backend); its config template is test/lab/etcd.yml.
export { fillTemplate, renderEtcdYml, type EtcdMember };

export interface PatroniNode {
  readonly scope: string;
  readonly node: string;
  readonly address: string;
  readonly hostDir: string;
  readonly dataDir: string;
  readonly callback: string;
  readonly etcd: readonly EtcdMember[];
  readonly timings: PatroniTimings;
  /** synchronous_mode_strict: never acknowledge a write without a synchronous standby (default false). */
  readonly syncStrict: boolean;
}

export function renderPatroniYml(n: PatroniNode): string {
  const problems = timingProblems(n.timings);
  if (problems.length > 0) throw new Error(`Patroni timings: ${problems.join('; ')}`);
  return fillTemplate(readFileSync(path.join(here, 'patroni.yml'), 'utf8'), {
    scope: n.scope,
    node: n.node,
    address: n.address,
    host_dir: n.hostDir,
    data_dir: n.dataDir,
    callback: n.callback,
    etcd_hosts: n.etcd.map((m) => `${m.address}:2379`).join(','),
    ttl: n.timings.ttl,
    loop_wait: n.timings.loopWait,
    retry_timeout: n.timings.retryTimeout,
    sync_strict: String(n.syncStrict),
  });
}
