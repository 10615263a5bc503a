// The anchors: other PostgreSQL HA tools (Patroni, pg_auto_failover, repmgr) run in the same lab as
// pgvip, on the same hosts, PostgreSQL, EC2 emulator, faults, writer probe and checkers, so that the
// bench can put measured rows beside pgvip's instead of figures from the tools' documentation.
//
// An anchor is described by an `AnchorSystem` (one per tool and setting: "patroni", "patroni-fast")
// and registered in registry.ts. Its files live in test/lab/anchors/<tool>/: the configuration a user
// of that tool would recognise (patroni.yml, pg_autoctl settings, repmgr.conf, templated with the
// lab's addresses) and the scripts it calls (the VIP hook). The lab then:
//
//   1. installs its Debian packages through scripts/system-deps.mjs (entries matching
//      `test/lab/anchors/<tool>`; the bench passes that path to the bootstrap);
//   2. builds the network, the emulator and, when `postgres` is 'lab', the PostgreSQL pair (db-a
//      primary, db-b streaming standby, no synchronous_standby_names: the tool sets that itself);
//      when it is 'tool', only the empty host directories (the tool runs initdb and the base backup);
//   3. calls `create(lab)` and `start()`: write the configs, start the daemons as lab Services
//      (`lab.reaper`, on their host, in its freezer cgroup, logging under `<lab>/logs/`);
//   4. waits for `health()`; when `postgres` is 'tool', creates the writer's schema on the primary
//      (with `lab.node`, see below) and starts the writer probe;
//   5. runs the bench's faults; after each run heals the network and thaws the hosts, then calls
//      `repair()`, which must return a healthy pair (the tool on its own, or what its documentation
//      tells an operator to do, e.g. `pg_autoctl` or `repmgr node rejoin`);
//   6. `down()` stops `services` and removes everything (also on a crash: the lab's reaper and exit
//      hooks; the next start clears what a dead run left).
//
// The writer tells the servers apart by `current_setting('lab.node')` when it is set, else by
// `cluster_name` (pgvip's lab sets that to the node id; Patroni forces it to its scope): a tool that
// owns cluster_name sets the custom parameter `lab.node` to the node id instead.
import type { HealthyCluster } from '../checkers.js';
import type { Lab } from '../lab.js';
import type { Milestone } from '../logs.js';
import type { Service } from '../supervisor.js';
import { dbNodes, otherNode, type DbNode } from '../topology.js';

/** The bench's failover scenarios (bench-failover.ts). */
export const failoverScenarios = ['host-loss', 'pg-crash', 'switchover', 'isolation', 'standby-loss'] as const;
export type FailoverScenario = (typeof failoverScenarios)[number];

export interface AnchorSystem {
  /** Its name on the command line and in the results, e.g. "patroni", "patroni-fast". */
  readonly name: string;
  /** Its directory under test/lab/anchors ("patroni"): configs, scripts, and the bootstrap's match. */
  readonly tool: string;
  /** One line for the results: tool, version, settings and why (shown under the table). */
  readonly describe: string;
  /** What a reader of the bench's tables needs to know about this tool's rows (printed under them). */
  readonly notes?: readonly string[];
  /**
   * What the tool did in bench:anchors' safety scenarios (bench/results/anchors.md), read from its logs
   * in the runs measured: where it split, stalled or rode the fault out, and why.
   */
  readonly safetyNotes?: readonly string[];
  /** Who creates the PostgreSQL pair: the lab (initdb + base backup, as for pgvip) or the tool. */
  readonly postgres: 'lab' | 'tool';
  /** Scenarios it does not handle, with the reason; the bench shows them as "not supported". */
  readonly unsupported?: Partial<Record<FailoverScenario, string>>;
  /**
   * Scenarios in which the tool restarts PostgreSQL where it was instead of failing over (Patroni after
   * a PostgreSQL crash): "writes back" then counts the first write acknowledged by either node.
   */
  readonly recoversInPlace?: readonly FailoverScenario[];
  /** How long a run waits for writes to resume through the VIP (default 60 s). */
  readonly recoveryDeadlineMs?: Partial<Record<FailoverScenario, number>>;
  /** One instance for a lab. */
  create(lab: Lab): AnchorInstance;
}

export interface AnchorInstance {
  /** Writes the configs and starts the daemons; the lab waits for health() afterwards. */
  start(): Promise<void>;
  /** What keeps the cluster from being healthy now (empty when it is), and the roles when it is. */
  health(): Promise<{ problems: string[]; healthy: HealthyCluster | null }>;
  /** A planned switchover to `to` with the tool's own command; absent when the tool has none. */
  switchover?(to: DbNode): Promise<void>;
  /** After a run whose faults are healed: back to a healthy pair (the tool, or its documented repair). */
  repair(): Promise<HealthyCluster>;
  /**
   * What the last repair had to do beyond waiting (an operator's step, because the tool stayed stuck),
   * cleared by the call; the bench adds it to the run's note.
   */
  takeRepairNotes?(): string[];
  /** Per-phase milestones after a fault, from the tool's logs (as far as they tell). */
  timeline?(faultAt: number, oldPrimary: DbNode, newPrimary: DbNode): Milestone[];
  /** The tool's log files by name ("patroni db-a", "etcd witness"): kept with a failed lab's directory. */
  logFiles(): Record<string, string>;
  /** Its long-running daemons: down() stops them, restoreAll() starts them again. */
  readonly services: readonly Service[];
}

// --- helpers every anchor needs -------------------------------------------------------------------

export interface ServerState {
  readonly node: DbNode;
  readonly up: boolean;
  readonly inRecovery: boolean;
  readonly writable: boolean;
}

/** Asks a server from inside the VPC whether it is up, in recovery, and would accept a write. */
export async function serverState(lab: Lab, node: DbNode): Promise<ServerState> {
  try {
    const sql = "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')";
    const [row] = await lab.emulator.sql(lab.topology.hosts[node].address, sql, [], 2_000);
    const inRecovery = row?.[0] === true;
    return { node, up: true, inRecovery, writable: !inRecovery && row?.[1] === 'off' };
  } catch {
    return { node, up: false, inRecovery: false, writable: false };
  }
}

/**
 * The health every anchor shares: exactly one writable server, the VIP routed to it by EC2's truth,
 * and the other streaming from it (as its synchronous standby when `sync`). Tools add their own
 * checks (their view of the leader, their daemons up) on top.
 */
export async function pairProblems(
  lab: Lab,
  options: { sync: boolean },
): Promise<{ problems: string[]; healthy: HealthyCluster | null }> {
  const states = await Promise.all(dbNodes.map((n) => serverState(lab, n)));
  const problems: string[] = [];
  const writable = states.filter((s) => s.writable);
  if (writable.length !== 1) {
    const roles = states.map((s) => `${s.node}: ${s.up ? (s.inRecovery ? 'standby' : 'primary') : 'down'}`);
    problems.push(`${writable.length} writable servers (${roles.join(', ')})`);
  }
  const primary = writable.length === 1 ? writable[0]!.node : undefined;
  if (primary === undefined) return { problems, healthy: null };
  const standby = otherNode(primary);
  const vipNode = await lab.emulator.vipNode();
  if (vipNode !== primary) problems.push(`the VIP routes to ${vipNode ?? 'nowhere'}, not to ${primary}`);
  try {
    const sql = 'SELECT state, sync_state FROM pg_stat_replication WHERE application_name = $1';
    const rows = await lab.emulator.sql(lab.topology.hosts[primary].address, sql, [standby], 2_000);
    if (rows[0]?.[0] !== 'streaming') problems.push(`${standby} does not stream from ${primary}`);
    else if (options.sync && rows[0]?.[1] !== 'sync') {
      problems.push(`${standby} streams but is not ${primary}'s synchronous standby (${String(rows[0]?.[1])})`);
    }
  } catch (err) {
    problems.push(`cannot ask ${primary}: ${(err as Error).message}`);
  }
  return { problems, healthy: problems.length === 0 ? { primary, standby, standbys: [standby], term: 0 } : null };
}
