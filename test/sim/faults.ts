// What each fault of a schedule does to the models; every fault heals by itself after its duration.
import type { PeerReply, PeerRequest } from '@pgvip/shared/core';
import type { Checker } from './checker.js';
import type { Hosts, SimClock } from './clock.js';
import type { Ec2 } from './ec2.js';
import type { EtcdCluster } from './etcd.js';
import type { Network } from './network.js';
import type { Nodes } from './nodes.js';
import type { Postgres } from './postgres.js';
import type { RngStreams } from './rng.js';
import { describeFault, HOSTS, type DbNode, type Fault, type Host } from './schedule.js';

export interface FaultTargets {
  readonly clock: SimClock;
  readonly hosts: Hosts;
  readonly rngs: RngStreams;
  readonly net: Network;
  readonly pg: Postgres;
  readonly ec2: Ec2;
  readonly nodes: Nodes;
  readonly check: Checker;
  readonly log: (who: string, text: string) => void;
  /** The etcd cluster when the schedule runs on etcd. */
  readonly etcd: EtcdCluster | null;
}

export function applyFault(w: FaultTargets, f: Fault): void {
  const { clock, hosts, net, pg, nodes } = w;
  w.log('FAULT', describeFault(f));
  if (w.etcd !== null && applyOnEtcd(w, w.etcd, f)) return;
  switch (f.kind) {
    case 'partition':
      return net.cut(f.a, f.b, f.oneWay, f.durMs);
    case 'isolate':
      return net.isolate(f.node, f.durMs);
    case 'loss':
      return net.lossy(f.a, f.b, f.p, f.durMs);
    case 'delay':
      return net.slow(f.a, f.b, f.extraMs, f.durMs);
    case 'flap':
      return net.flap(f.a, f.b, f.cutMs, f.periodMs, f.durMs);
    case 'crash-agent':
      nodes.crash(f.node);
      clock.after(f.downMs, () => nodes.restart(f.node));
      return;
    case 'crash-host': {
      const h = f.node;
      nodes.crash(h);
      hosts.state[h].crashed = true;
      hosts.state[h].backlog = [];
      if (h !== 'witness') pg.down(h);
      clock.after(f.downMs, () => {
        hosts.state[h].crashed = false;
        if (h !== 'witness') pg.pg[h].running = true; // PostgreSQL starts at boot as it was configured
        nodes.restart(h);
      });
      return;
    }
    case 'kill-pg':
      pg.down(f.node);
      clock.after(f.downMs, () => {
        if (!hosts.crashed(f.node)) pg.pg[f.node].running = true;
      });
      return;
    case 'pause-host': {
      const hs = hosts.state[f.node];
      hs.paused = true;
      clock.after(f.durMs, () => {
        hs.paused = false;
        const backlog = hs.backlog;
        hs.backlog = [];
        w.log('FAULT', `resume host ${f.node} (${backlog.length} deferred events)`);
        for (const fn of backlog) fn();
      });
      return;
    }
    case 'az-loss':
      // The AZ's network first, then its host (the host boots into a network still cut).
      net.isolate(f.node, f.durMs);
      return applyFault(w, { kind: 'crash-host', at: f.at, node: f.node, downMs: f.downMs });
    case 'lag':
      return pg.lag(f.node, f.bytesPerRound, f.durMs);
    case 'veto-promote':
      pg.pg[f.node].vetoUntil = Math.max(pg.pg[f.node].vetoUntil, clock.t + f.durMs);
      return;
    case 'stall-disk':
      pg.pg[f.node].stalledUntil = Math.max(pg.pg[f.node].stalledUntil, clock.t + f.durMs);
      return;
    case 'ec2':
      return w.ec2.fault(f.fault, f.durMs);
    case 'switchover':
      return nodes.operator({ kind: 'switchover', to: null, delayMs: 0, by: 'sim' });
    case 'maintenance':
      nodes.operator({ kind: 'maintenance', on: true, by: 'sim' });
      clock.after(f.durMs, () => nodes.operator({ kind: 'maintenance', on: false, by: 'sim' }));
      return;
    case 'forge-lease-request':
      return forgeLeaseRequest(w, f.to, f.from, f.ahead);
    case 'etcd-crash':
    case 'etcd-isolate-leader':
    case 'etcd-quorum-loss':
    case 'etcd-freeze-leader':
    case 'etcd-cut-agent':
    case 'etcd-slow':
      return w.log('FAULT', 'no etcd in this run: nothing happens');
    case 'planned-restart': {
      // The witness backend: two nodes.
      const primary = nodes.witnessPrimary();
      if (primary === null) return;
      const node: DbNode = f.node === 'primary' ? primary : primary === 'db-a' ? 'db-b' : 'db-a';
      pg.pg[node].plannedRestart = { takesMs: f.restartMs, fails: f.fails };
      return nodes.operator({ kind: 'restart', node, timeoutMs: f.timeoutMs, by: 'sim' });
    }
  }
}

/**
 * What a fault does differently on etcd; false when it does what it does on the witness. The witness
 * host runs only its etcd member there: its process is the member, and host faults (crash, pause,
 * isolation, partitions, loss, delay) reach the member through the host and the network.
 */
function applyOnEtcd(w: FaultTargets, etcd: EtcdCluster, f: Fault): boolean {
  const later = (ms: number, fn: () => void) => w.clock.after(ms, fn);
  switch (f.kind) {
    case 'crash-agent':
      if (f.node !== 'witness') return false;
      etcd.crash('witness');
      later(f.downMs, () => etcd.restart('witness'));
      return true;
    case 'crash-host':
      etcd.crash(f.node);
      // After the host is up again (the common handling, below, brings it up at the same instant).
      later(f.downMs, () => later(0, () => etcd.restart(f.node)));
      return false;
    case 'etcd-crash':
      etcd.crash(f.node);
      later(f.downMs, () => etcd.restart(f.node));
      return true;
    case 'etcd-isolate-leader': {
      const l = etcd.isolateLeader(f.durMs);
      w.log('FAULT', l === null ? 'etcd has no leader to isolate' : `etcd's leader is on ${l}`);
      return true;
    }
    case 'etcd-quorum-loss': {
      const first = etcd.leader() ?? 'witness';
      const second = HOSTS.find((h) => h !== first)!;
      etcd.freeze(first, f.durMs);
      etcd.freeze(second, f.durMs);
      return true;
    }
    case 'etcd-freeze-leader': {
      const l = etcd.freezeLeader(f.durMs);
      w.log('FAULT', l === null ? 'etcd has no leader to freeze' : `etcd's leader is on ${l}`);
      return true;
    }
    case 'etcd-cut-agent':
      etcd.cutClient(f.node, f.durMs);
      return true;
    case 'etcd-slow':
      etcd.slowReplies(f.node, f.extraMs, f.durMs);
      return true;
    case 'switchover': {
      // Half the switchovers on etcd also crash the old primary's agent between etcd's handover txn
      // and its persist of the next term (nodes.ts, #crashBeforePersist): the window the term read at
      // the agent's start closes (docs/etcd.md, "The agent's start"). A stream of its own.
      const rng = w.rngs.get('handover crash');
      const crash = rng.chance(0.5) ? { downMs: rng.int(0, 3_000) } : null;
      w.nodes.etcdSwitchover(10, crash, f.to ?? null);
      return true;
    }
    case 'maintenance':
      etcd.setMaintenance(true);
      later(f.durMs, () => etcd.setMaintenance(false));
      return true;
    case 'planned-restart':
    case 'forge-lease-request':
      // Both come from (or go to) the witness daemon, which the etcd runs leave out.
      w.log('FAULT', 'not modelled on etcd: nothing happens');
      return true;
    default:
      return false;
  }
}

/** A key holder's lease request: it arrives wherever the attacker sits, past every partition. */
function forgeLeaseRequest(w: FaultTargets, to: Host, from: DbNode, ahead: number | 'max-safe-integer'): void {
  const term = ahead === 'max-safe-integer' ? Number.MAX_SAFE_INTEGER : w.check.newestTerm() + ahead;
  const msg: PeerRequest = {
    v: 1, cluster: 'sim', term, from, kind: 'lease-request', seq: 2 ** 40, lsn: 0n, timeline: 1, syncStandby: null,
  };
  const answered = (r: PeerReply) => {
    const granted = r.kind === 'lease-reply' && r.granted ? 'granted' : 'refused';
    w.log(to, `answered the forged lease request for term ${term}: ${granted}`);
  };
  w.clock.after(w.rngs.get('forged').int(1, 3), () => w.hosts.run(to, () => w.nodes.serve(to, msg, answered)));
}
