// pg_auto_failover's settings for the lab, rendered from the readable files next to this one:
// monitor.conf (the monitor's pgautofailover.* settings) and keeper.cfg (the keepers' [timeout]
// section of pg_autoctl.cfg). Two settings are measured:
//
//   defaults  what pg_auto_failover 2.0 uses when nothing is set (pg_autoctl(5) lists them: health
//             checks every 5 s with a 5 s timeout and 2 retries 2 s apart, a node unhealthy after
//             20 s without a report, 30 s for the old primary to demote, a 20 s network partition
//             timeout on the keepers).
//   fast      the shortest settings that keep the manual's safety argument. pg_autoctl(5) names the
//             knobs but gives no floor, so the values are ours, with two constraints kept. First, an
//             isolated primary must have stopped PostgreSQL before the monitor opens the promoted
//             standby for writes: the standby opens node_considered_unhealthy_timeout (5 s) +
//             primary_demote_timeout (10 s) after the fault at the earliest, the old primary's keeper
//             demotes after network_partition_timeout (5 s) — but it counts a standby its walsender
//             still lists as a sign that the network is fine, so wal_sender_timeout (5 s here;
//             pg_autoctl sets 30 s) bounds it too (measured with 30 s: the isolated primary stayed
//             writable 7–8 s after the standby had taken over). Second, the health check (every 1 s,
//             1 s timeout, 2 retries 1 s apart: bad after about 5 s) fits within
//             node_considered_unhealthy_timeout (5 s), so a node is failed only when both the
//             monitor's pings and the keeper's own reports have stopped.
import { readFileSync } from 'node:fs';
import path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);

export interface PgAutoFailoverSettings {
  /** The monitor's pgautofailover.* settings, in milliseconds (retries: a count). */
  readonly monitor: {
    readonly health_check_period: number;
    readonly health_check_timeout: number;
    readonly health_check_max_retries: number;
    readonly health_check_retry_delay: number;
    readonly node_considered_unhealthy_timeout: number;
    readonly primary_demote_timeout: number;
    readonly startup_grace_period: number;
  };
  /** PostgreSQL's wal_sender_timeout on the nodes, in seconds (postgresql-lab.conf). */
  readonly walSenderTimeout: number;
  /** The keepers' [timeout] section, in seconds (retries: a count). */
  readonly keeper: {
    readonly network_partition_timeout: number;
    readonly postgresql_restart_failure_timeout: number;
    readonly postgresql_restart_failure_max_retries: number;
  };
}

export const pgafDefaults: PgAutoFailoverSettings = {
  monitor: {
    health_check_period: 5_000,
    health_check_timeout: 5_000,
    health_check_max_retries: 2,
    health_check_retry_delay: 2_000,
    node_considered_unhealthy_timeout: 20_000,
    primary_demote_timeout: 30_000,
    startup_grace_period: 10_000,
  },
  walSenderTimeout: 30,
  keeper: {
    network_partition_timeout: 20,
    postgresql_restart_failure_timeout: 20,
    postgresql_restart_failure_max_retries: 3,
  },
};

export const pgafFast: PgAutoFailoverSettings = {
  monitor: {
    health_check_period: 1_000,
    health_check_timeout: 1_000,
    health_check_max_retries: 2,
    health_check_retry_delay: 1_000,
    node_considered_unhealthy_timeout: 5_000,
    primary_demote_timeout: 10_000,
    startup_grace_period: 10_000,
  },
  walSenderTimeout: 5,
  keeper: {
    network_partition_timeout: 5,
    postgresql_restart_failure_timeout: 20,
    postgresql_restart_failure_max_retries: 3,
  },
};

/** How long the monitor's health check takes to call a node bad: the check and each retry, and the delays. */
export function healthCheckBadAfterMs(m: PgAutoFailoverSettings['monitor']): number {
  const checks = m.health_check_max_retries + 1;
  return m.health_check_timeout * checks + m.health_check_retry_delay * m.health_check_max_retries;
}

/** The safety constraints above; empty when the settings keep them. */
export function settingsProblems(s: PgAutoFailoverSettings): string[] {
  const problems: string[] = [];
  // An isolated primary demotes once it has seen neither the monitor nor a standby for
  // network_partition_timeout, and its walsender notices a cut standby only after wal_sender_timeout.
  // The standby takes writes at the earliest node_considered_unhealthy_timeout + primary_demote_timeout
  // after the fault (the monitor fails the primary, then waits for it to demote).
  const isolatedPrimaryUpMs = Math.max(s.keeper.network_partition_timeout, s.walSenderTimeout) * 1_000;
  const standbyOpensMs = s.monitor.node_considered_unhealthy_timeout + s.monitor.primary_demote_timeout;
  if (standbyOpensMs <= isolatedPrimaryUpMs) {
    problems.push(
      `node_considered_unhealthy_timeout + primary_demote_timeout (${standbyOpensMs} ms) must exceed the keepers' ` +
        `timeout.network_partition_timeout (${s.keeper.network_partition_timeout} s) and wal_sender_timeout ` +
        `(${s.walSenderTimeout} s): an isolated primary must have stopped before the promoted standby takes writes`,
    );
  }
  const bad = healthCheckBadAfterMs(s.monitor);
  if (bad > s.monitor.node_considered_unhealthy_timeout) {
    problems.push(
      `the health check needs ${bad} ms to call a node bad, more than ` +
        `pgautofailover.node_considered_unhealthy_timeout (${s.monitor.node_considered_unhealthy_timeout} ms)`,
    );
  }
  const all = [...Object.entries(s.monitor), ...Object.entries(s.keeper), ['wal_sender_timeout', s.walSenderTimeout] as const];
  for (const [k, v] of all) {
    if (!Number.isInteger(v) || v < 1) problems.push(`${k} must be a positive whole number (got ${v})`);
  }
  return problems;
}

/** Replaces every {{name}}; a field the template uses but `values` lacks is an error, not an empty string. */
export function fillTemplate(template: string, values: Readonly<Record<string, string | number>>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_m, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`template field {{${name}}} has no value`);
    return String(v);
  });
}

function checked(s: PgAutoFailoverSettings): PgAutoFailoverSettings {
  const problems = settingsProblems(s);
  if (problems.length > 0) throw new Error(`pg_auto_failover settings: ${problems.join('; ')}`);
  return s;
}

/** The lines appended to the monitor's postgresql.conf. */
export function renderMonitorConf(s: PgAutoFailoverSettings, setting: string): string {
  return fillTemplate(readFileSync(path.join(here, 'monitor.conf'), 'utf8'), { ...checked(s).monitor, setting });
}

/** The keepers' [timeout] section, as a user would read it in pg_autoctl.cfg. */
export function renderKeeperCfg(s: PgAutoFailoverSettings, setting: string): string {
  return fillTemplate(readFileSync(path.join(here, 'keeper.cfg'), 'utf8'), { ...checked(s).keeper, setting });
}

/**
 * The `pg_autoctl config set` calls that apply a rendered keeper.cfg: one `section.name value` per
 * setting line (comments and blank lines skipped).
 */
export function configSetArgs(cfg: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let section = '';
  for (const raw of cfg.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const sec = /^\[(\w+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!;
      continue;
    }
    const kv = /^(\w+)\s*=\s*(\S+)$/.exec(line);
    if (!kv || section === '') throw new Error(`keeper.cfg: cannot read "${line}"`);
    out.push([`${section}.${kv[1]}`, kv[2]!]);
  }
  return out;
}

/** The lab's additions to the nodes' postgresql.conf (postgresql-lab.conf), with the measured wal_sender_timeout. */
export function labPostgresqlConf(s: PgAutoFailoverSettings): string {
  const template = readFileSync(path.join(here, 'postgresql-lab.conf'), 'utf8');
  return fillTemplate(template, { wal_sender_timeout: checked(s).walSenderTimeout });
}

/** A host's node.conf: settings of the host, not of the data (never copied by a base backup). */
export function nodeConf(node: string, socketDir: string): string {
  return `unix_socket_directories = '${socketDir}'\nlab.node = '${node}'\n`;
}
