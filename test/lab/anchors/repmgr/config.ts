// repmgr's configuration for the lab, rendered from the readable repmgr.conf next to this file with each
// node's id, name, address and paths, and the two settings measured:
//
//   defaults  what repmgr 5.3 uses when they are not set ("repmgrd configuration"): a check every 2 s
//             (monitor_interval_secs), PQping (connection_check_type ping), 6 reconnection attempts
//             10 s apart before the election (about a minute), primary_visibility_consensus off.
//   fast      monitor_interval_secs 1, 3 reconnection attempts 1 s apart, with
//             primary_visibility_consensus on. repmgr's documentation gives no lower bounds (it only
//             says the election starts after reconnect_attempts × reconnect_interval); what keeps a
//             short window safe against a false failover is the consensus it documents for exactly
//             this ("Primary visibility consensus"): a standby does not promote while another node,
//             here the witness, has seen the primary within the last few seconds. Three attempts keep
//             one lost ping or a restart of the primary's listener from starting an election.
import { readFileSync } from 'node:fs';
import path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);

export interface RepmgrSettings {
  readonly monitor_interval_secs: number;
  readonly connection_check_type: 'ping' | 'connection' | 'query';
  readonly reconnect_attempts: number;
  readonly reconnect_interval: number;
  readonly primary_visibility_consensus: boolean;
}

export const repmgrDefaults: RepmgrSettings = {
  monitor_interval_secs: 2,
  connection_check_type: 'ping',
  reconnect_attempts: 6,
  reconnect_interval: 10,
  primary_visibility_consensus: false,
};

export const repmgrFast: RepmgrSettings = {
  monitor_interval_secs: 1,
  connection_check_type: 'ping',
  reconnect_attempts: 3,
  reconnect_interval: 1,
  primary_visibility_consensus: true,
};

export interface RepmgrNode {
  readonly nodeId: number;
  readonly nodeName: string;
  readonly address: string;
  readonly dataDir: string;
  /** Where PostgreSQL logs (pg_ctl -l), for service_start_command. */
  readonly pgLog: string;
  /** The file itself (repmgr -f), which promote_command and follow_command name. */
  readonly configFile: string;
  readonly promoteCommand: string;
  readonly pidFile: string;
}

/** Replaces every {{name}}; a field the template uses but `values` lacks is an error, not an empty string. */
export function fillTemplate(template: string, values: Readonly<Record<string, string | number>>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_m, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`template field {{${name}}} has no value`);
    return String(v);
  });
}

export function settingsProblems(s: RepmgrSettings): string[] {
  const problems: string[] = [];
  for (const k of ['monitor_interval_secs', 'reconnect_attempts', 'reconnect_interval'] as const) {
    if (!Number.isInteger(s[k]) || s[k] < 1) problems.push(`${k} must be a positive whole number (got ${s[k]})`);
  }
  return problems;
}

/** Seconds from the first failed check to the election, as repmgr's documentation counts it. */
export function electionAfterSecs(s: RepmgrSettings): number {
  return s.reconnect_attempts * s.reconnect_interval;
}

export function renderRepmgrConf(n: RepmgrNode, s: RepmgrSettings, setting: string): string {
  const problems = settingsProblems(s);
  if (problems.length > 0) throw new Error(`repmgr settings: ${problems.join('; ')}`);
  // repmgr.conf values are single-quoted strings; a quote in a path would end one early.
  for (const v of [n.nodeName, n.dataDir, n.pgLog, n.configFile, n.promoteCommand, n.pidFile]) {
    if (v.includes("'")) throw new Error(`repmgr.conf: ${v} contains a single quote`);
  }
  return fillTemplate(readFileSync(path.join(here, 'repmgr.conf'), 'utf8'), {
    setting,
    node_id: n.nodeId,
    node_name: n.nodeName,
    address: n.address,
    data_dir: n.dataDir,
    pg_log: n.pgLog,
    config_file: n.configFile,
    promote_command: n.promoteCommand,
    pid_file: n.pidFile,
    monitor_interval_secs: s.monitor_interval_secs,
    connection_check_type: s.connection_check_type,
    reconnect_attempts: s.reconnect_attempts,
    reconnect_interval: s.reconnect_interval,
    primary_visibility_consensus: String(s.primary_visibility_consensus),
  });
}

/** The key/value pairs of a rendered repmgr.conf (comments and blank lines skipped; quotes removed). */
export function parseRepmgrConf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const kv = /^(\w+)\s*=\s*(.*)$/.exec(line);
    if (!kv) throw new Error(`repmgr.conf: cannot read "${line}"`);
    const v = kv[2]!.trim();
    out[kv[1]!] = v.startsWith("'") && v.endsWith("'") ? v.slice(1, -1) : v;
  }
  return out;
}

/** The lab's postgresql.conf additions (postgresql-lab.conf). */
export function labPostgresqlConf(): string {
  return readFileSync(path.join(here, 'postgresql-lab.conf'), 'utf8');
}
