// What each fault of a schedule does to the models; every fault heals by itself after its duration.
import type { PeerReply, PeerRequest } from '@pgvip/shared/core';
import type { Checker } from './checker.js';
import type { Hosts, SimClock } from './clock.js';
import type { Ec2 } from './ec2.js';
import type { Network } from './network.js';
import type { Nodes } from './nodes.js';
import type { Postgres } from './postgres.js';
import type { RngStreams } from './rng.js';
import { describeFault, type DbNode, type Fault, type Host } from './schedule.js';

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
}

export function applyFault(w: FaultTargets, f: Fault): void {
  const { clock, hosts, net, pg, nodes } = w;
  w.log('FAULT', describeFault(f));
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
    case 'planned-restart': {
      const primary = nodes.witnessPrimary();
      if (primary === null) return;
      const node: DbNode = f.node === 'primary' ? primary : primary === 'db-a' ? 'db-b' : 'db-a';
      pg.pg[node].plannedRestart = { takesMs: f.restartMs, fails: f.fails };
      return nodes.operator({ kind: 'restart', node, timeoutMs: f.timeoutMs, by: 'sim' });
    }
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
