// Fault schedules: what happens to the simulated cluster, and when. Every fault heals by itself
// after its duration, and everything is healed at `healAtMs` so convergence can be checked.
import type { Timings } from '@pgvip/shared/core';

export type DbNode = 'db-a' | 'db-b' | 'db-c';
export type Host = DbNode | 'witness';
/**
 * The hosts of a two-node cluster, and on etcd the hosts of etcd's three members whatever the node
 * count (as in the lab: db-c, the third database host, runs no member).
 */
export const HOSTS: readonly Host[] = ['db-a', 'db-b', 'witness'];
/** The database nodes of a two-node cluster (the witness backend's only shape). */
export const DB_NODES: readonly DbNode[] = ['db-a', 'db-b'];
/** The database nodes of a three-node cluster (etcd only: docs/design.md, "More than one standby"). */
export const DB_NODES_3: readonly DbNode[] = ['db-a', 'db-b', 'db-c'];
const HOSTS_3: readonly Host[] = ['db-a', 'db-b', 'db-c', 'witness'];

/** The database nodes of `s`, in config order (db-a starts as primary). */
export function dbNodesOf(s: Pick<Schedule, 'nodes'>): readonly DbNode[] {
  return s.nodes === 3 ? DB_NODES_3 : DB_NODES;
}
/** The database nodes of `s` that may be promoted (not noFailover). */
export function eligibleOf(s: Pick<Schedule, 'nodes' | 'noFailover'>): readonly DbNode[] {
  return dbNodesOf(s).filter((n) => !(s.noFailover ?? []).includes(n));
}
/** Every host of `s`: its database nodes and the witness host (on etcd it runs only etcd's member). */
export function hostsOf(s: Pick<Schedule, 'nodes'>): readonly Host[] {
  return s.nodes === 3 ? HOSTS_3 : HOSTS;
}

export type Ec2FaultKind = 'throttle' | '5xx' | 'hang' | 'lost' | 'stale' | 'slow-remap';

export type Fault =
  /** Drop traffic from a to b (and b to a unless oneWay). */
  | {
    readonly kind: 'partition'; readonly at: number; readonly a: Host; readonly b: Host; readonly oneWay: boolean;
    readonly durMs: number;
  }
  /** Cut a host from both others (its processes keep running). */
  | { readonly kind: 'isolate'; readonly at: number; readonly node: Host; readonly durMs: number }
  /** Random loss on the link a↔b with probability p. */
  | {
    readonly kind: 'loss'; readonly at: number; readonly a: Host; readonly b: Host; readonly p: number;
    readonly durMs: number;
  }
  /** Extra one-way delay on a→b (reordering follows from the jitter). */
  | {
    readonly kind: 'delay'; readonly at: number; readonly a: Host; readonly b: Host; readonly extraMs: number;
    readonly durMs: number;
  }
  /** Flapping link: cut for cutMs every periodMs during durMs. */
  | {
    readonly kind: 'flap'; readonly at: number; readonly a: Host; readonly b: Host; readonly cutMs: number;
    readonly periodMs: number; readonly durMs: number;
  }
  | { readonly kind: 'crash-agent'; readonly at: number; readonly node: Host; readonly downMs: number }
  /** The whole host dies (agent and PostgreSQL) and boots again after downMs (PostgreSQL restarts as it was). */
  | { readonly kind: 'crash-host'; readonly at: number; readonly node: Host; readonly downMs: number }
  /** kill -9 of PostgreSQL; systemd starts it again after downMs. */
  | { readonly kind: 'kill-pg'; readonly at: number; readonly node: DbNode; readonly downMs: number }
  /** SIGSTOP / freezer of every process on the host. */
  | { readonly kind: 'pause-host'; readonly at: number; readonly node: Host; readonly durMs: number }
  /** Writes and write probes hang for durMs. */
  | { readonly kind: 'stall-disk'; readonly at: number; readonly node: DbNode; readonly durMs: number }
  | { readonly kind: 'ec2'; readonly at: number; readonly fault: Ec2FaultKind; readonly durMs: number }
  /** An operator's switchover; three nodes: to `to` (else to the first other node). */
  | { readonly kind: 'switchover'; readonly at: number; readonly to?: DbNode }
  | { readonly kind: 'maintenance'; readonly at: number; readonly durMs: number }
  /**
   * `pgvip restart` of the node that is primary (or standby) when it comes: its PostgreSQL stops and
   * takes restartMs to start again (or fails to start, when `fails`); failure handling is held for at
   * most timeoutMs.
   */
  | {
    readonly kind: 'planned-restart'; readonly at: number; readonly node: 'primary' | 'standby';
    readonly timeoutMs: number; readonly restartMs: number; readonly fails: boolean;
  }
  /**
   * Someone holding the cluster key sends `to` a correctly signed lease request in the name of `from`
   * for a term no vote created: `ahead` terms above the newest any node holds, or 2^53 − 1.
   * The wire bound stops the latter before the core in a daemon; the simulator hands it to the core.
   */
  /**
   * The before-promote hook on `node` (docs/hooks.md) vetoes every promotion for durMs: the agent
   * reports each as a failed promote effect, which is all the core ever sees of a veto.
   */
  | { readonly kind: 'veto-promote'; readonly at: number; readonly node: DbNode; readonly durMs: number }
  | {
    readonly kind: 'forge-lease-request'; readonly at: number; readonly to: Host; readonly from: DbNode;
    readonly ahead: number | 'max-safe-integer';
  }
  /**
   * An availability zone is lost: its database host crashes and its network is cut (from every host
   * and the client) for durMs; the host boots again after downMs (≤ durMs), still cut off until then.
   */
  | { readonly kind: 'az-loss'; readonly at: number; readonly node: DbNode; readonly downMs: number; readonly durMs: number }
  /**
   * A standby falls behind: for durMs it receives at most bytesPerRound of WAL per replication round
   * (the client writes 25 bytes a round), so its flush position trails its primary's.
   */
  | { readonly kind: 'lag'; readonly at: number; readonly node: DbNode; readonly bytesPerRound: number; readonly durMs: number }
  // --- etcd's own faults (schedules on the etcd backend; etcd.ts) ---
  /** The etcd member on `node` is killed (kill -9) and started again after downMs, its data kept. */
  | { readonly kind: 'etcd-crash'; readonly at: number; readonly node: Host; readonly downMs: number }
  /** Whichever member leads etcd then is cut from the other members and from every client. */
  | { readonly kind: 'etcd-isolate-leader'; readonly at: number; readonly durMs: number }
  /** etcd loses its quorum: two members (the leader among them) are frozen (SIGSTOP) for durMs. */
  | { readonly kind: 'etcd-quorum-loss'; readonly at: number; readonly durMs: number }
  /** Whichever member leads etcd then is frozen (SIGSTOP) for durMs; the others elect a new one. */
  | { readonly kind: 'etcd-freeze-leader'; readonly at: number; readonly durMs: number }
  /** The agent on `node` is cut from every etcd member (their client port), not from its peer. */
  | { readonly kind: 'etcd-cut-agent'; readonly at: number; readonly node: DbNode; readonly durMs: number }
  /** etcd's answers to the agent on `node` arrive extraMs later. */
  | {
    readonly kind: 'etcd-slow'; readonly at: number; readonly node: DbNode; readonly extraMs: number;
    readonly durMs: number;
  };

/** Where the agents' quorum lives: the witness daemon (default) or a three-member etcd. */
export type Backend = 'witness' | 'etcd';

/** Clock rate of each host, within 1 ± ρ (db-c's is 1 when a schedule names none). */
export type ClockRates = Readonly<Record<Exclude<Host, 'db-c'>, number>> & { readonly 'db-c'?: number };

export interface Schedule {
  readonly seed: number;
  readonly clockRates: ClockRates;
  /**
   * How many database nodes (default 2). Three run only on etcd: db-a, db-b and db-c, one per AZ,
   * with etcd's members on db-a, db-b and the witness host as in the lab.
   */
  readonly nodes?: 2 | 3;
  /** Three nodes: nodes that are never promoted (never db-a, which starts as primary). */
  readonly noFailover?: readonly DbNode[];
  /** Three nodes: each node's priority (default 0). */
  readonly priority?: Readonly<Partial<Record<DbNode, number>>>;
  /** Three nodes: replication.degrade (default 'async': too few standbys lower k with etcd's agreement). */
  readonly degrade?: 'async' | 'block';
  /** Three nodes, sync, no noFailover node: replication.synchronousCount (default 1: ANY 1). */
  readonly synchronousCount?: 1 | 2;
  readonly replication: 'sync' | 'async';
  /** Base one-way network delay range. */
  readonly delayMs: readonly [number, number];
  readonly duplicateP: number;
  readonly faults: readonly Fault[];
  /** All faults end here; the run continues to `endMs` to check convergence. */
  readonly healAtMs: number;
  readonly endMs: number;
  /** Start from a never-elected cluster (term 0) instead of db-a as primary of term 1. */
  readonly bootstrap?: boolean;
  /** The timings every node runs (default: defaultTimings); part of the schedule so a seed replays them. */
  readonly timings?: Timings;
  /** The quorum backend (default: the witness). */
  readonly backend?: Backend;
}

export function baseSchedule(seed: number, faults: Fault[] = [], patch: Partial<Schedule> = {}): Schedule {
  return {
    seed,
    clockRates: { 'db-a': 1, 'db-b': 1, witness: 1 },
    replication: 'sync',
    delayMs: [1, 3],
    duplicateP: 0,
    faults,
    healAtMs: 60_000,
    endMs: 85_000,
    ...patch,
  };
}

export function describeFault(f: Fault): string {
  switch (f.kind) {
    case 'partition':
      return `partition ${f.a} ${f.oneWay ? '→' : '↔'} ${f.b} for ${f.durMs} ms`;
    case 'isolate':
      return `isolate ${f.node} for ${f.durMs} ms`;
    case 'loss':
      return `${Math.round(f.p * 100)}% loss ${f.a} ↔ ${f.b} for ${f.durMs} ms`;
    case 'delay':
      return `+${f.extraMs} ms delay ${f.a} → ${f.b} for ${f.durMs} ms`;
    case 'flap':
      return `flap ${f.a} ↔ ${f.b}: ${f.cutMs} ms cut every ${f.periodMs} ms for ${f.durMs} ms`;
    case 'crash-agent':
      return `kill the agent on ${f.node} for ${f.downMs} ms`;
    case 'crash-host':
      return `crash host ${f.node} for ${f.downMs} ms`;
    case 'kill-pg':
      return `kill -9 postgresql on ${f.node} (restarted after ${f.downMs} ms)`;
    case 'pause-host':
      return `pause host ${f.node} for ${f.durMs} ms`;
    case 'stall-disk':
      return `stall the disk of ${f.node} for ${f.durMs} ms`;
    case 'ec2':
      return `EC2 ${f.fault} for ${f.durMs} ms`;
    case 'switchover':
      return 'operator: switchover';
    case 'maintenance':
      return `operator: maintenance on for ${f.durMs} ms`;
    case 'planned-restart':
      return `operator: restart the ${f.node} (takes ${f.restartMs} ms${f.fails ? ', then fails to start' : ''}; hold at most ${f.timeoutMs} ms)`;
    case 'az-loss':
      return `lose the AZ of ${f.node} (host down ${f.downMs} ms, network cut ${f.durMs} ms)`;
    case 'lag':
      return `${f.node} receives at most ${f.bytesPerRound} bytes a round for ${f.durMs} ms`;
    case 'veto-promote':
      return `the before-promote hook on ${f.node} vetoes every promotion for ${f.durMs} ms`;
    case 'etcd-crash':
      return `kill the etcd member on ${f.node} for ${f.downMs} ms`;
    case 'etcd-isolate-leader':
      return `isolate etcd's leader for ${f.durMs} ms`;
    case 'etcd-quorum-loss':
      return `etcd loses its quorum (two members frozen) for ${f.durMs} ms`;
    case 'etcd-freeze-leader':
      return `freeze etcd's leader for ${f.durMs} ms`;
    case 'etcd-cut-agent':
      return `cut the agent on ${f.node} from etcd for ${f.durMs} ms`;
    case 'etcd-slow':
      return `etcd answers ${f.node} ${f.extraMs} ms late for ${f.durMs} ms`;
    case 'forge-lease-request':
      return `a key holder sends ${f.to} a lease request from ${f.from} for ${f.ahead === 'max-safe-integer' ? 'term 2^53 − 1' : `the newest term + ${f.ahead}`}`;
  }
}
