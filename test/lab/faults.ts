// The lab's fault tools, all real and all reversible:
//
//   network  nftables, one table `inet pgvip_lab` per host namespace, rebuilt atomically from the list
//            of active faults on every change: full isolation, one-way cuts (asymmetric drops),
//            partitions (both directions), random loss with `numgen random mod 100 < P`, one service's
//            ports (an etcd member), one user's connections to a port (an agent cut from etcd); and in the
//            router's own table, loss or a cut on the path between two hosts (`path-loss`, the flapping
//            links of bench:failover's flap-loss, on a seeded schedule: `flapSchedule`). There is no
//            netem on this kernel, and none is needed: a drop is what a partition looks like.
//   hosts    the cgroup v1 freezer stops every process of a host at once (agent, PostgreSQL, baseline
//            loop) without them noticing; SIGSTOP/SIGCONT as the alternative for a single tree.
//   postgres kill -9 of the whole server (postmaster and children), and a disk stall: SIGSTOP of the
//            server's processes, so every statement hangs exactly as on a device that stopped
//            answering, while the agent beside it keeps running.
//   clocks   libfaketime in the agents and the witness reads a per-host offset file; writing "+1h"
//            jumps that host's wall clock by an hour at once. Monotonic clocks are left alone (pgvip
//            never trusts wall time, and the test is that nothing happens).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freezerCgroupOf, mustRun } from './exec.js';
import { signalServer, type PgServer } from './postgres.js';
import type { HostName, Topology } from './topology.js';

export type NetworkFault =
  /** Nothing in or out of the host's eth0 (loopback keeps working). */
  | { readonly kind: 'isolate'; readonly host: HostName }
  /**
   * The host's link goes dark in the network: what it sends and what is sent to it is lost on the way,
   * dropped at the receivers' input. Unlike `isolate` (dropped at the host's own output, which its TCP
   * sees as a local send failure and retries every 0.5 s without backing off), neither end of a TCP
   * connection can tell, and both retransmit with exponential backoff, as across a real network.
   */
  | { readonly kind: 'dark'; readonly host: HostName }
  /** Packets from `from` to `to` are dropped; the other direction flows (asymmetric). */
  | { readonly kind: 'cut'; readonly from: HostName; readonly to: HostName }
  /** Each packet between a and b (both directions) is dropped with probability percent/100. */
  | { readonly kind: 'loss'; readonly a: HostName; readonly b: HostName; readonly percent: number }
  /** TCP to and from these ports on the host's eth0 is dropped: one service (an etcd member) cut off, the host not. */
  | { readonly kind: 'isolate-ports'; readonly host: HostName; readonly ports: readonly number[] }
  /** TCP that processes of this uid on the host send to this port is dropped on every interface, loopback too. */
  | { readonly kind: 'cut-port'; readonly host: HostName; readonly port: number; readonly uid: number }
  /**
   * The path between hosts a and b through the VPC loses percent % of its packets, each direction on its
   * own; 100: the path is down. Dropped in the router's forward path (the router-side links are named
   * after the hosts), so neither end sees a local drop and TCP backs off as across EC2's network, and
   * what a host sends from the VIP is caught as well as what it sends from its own address.
   */
  | { readonly kind: 'path-loss'; readonly a: HostName; readonly b: HostName; readonly percent: number };

export const nftTable = 'pgvip_lab';

export function describeNetworkFault(f: NetworkFault): string {
  switch (f.kind) {
    case 'isolate':
      return `${f.host} isolated`;
    case 'dark':
      return `${f.host}'s link dark`;
    case 'cut':
      return `${f.from} → ${f.to} dropped`;
    case 'loss':
      return `${f.percent}% loss between ${f.a} and ${f.b}`;
    case 'isolate-ports':
      return `${f.host}: tcp ports ${f.ports.join(', ')} isolated`;
    case 'cut-port':
      return `${f.host}: uid ${f.uid} → tcp port ${f.port} dropped`;
    case 'path-loss':
      return f.percent >= 100 ? `path ${f.a} ↔ ${f.b} down` : `${f.percent}% loss on the path ${f.a} ↔ ${f.b}`;
  }
}

/**
 * The nftables script that makes `host`'s table enforce `faults` (pure, so it is unit-tested).
 * One transaction: make sure the table exists, flush it, declare the chains with the rules.
 */
export function nftScript(t: Topology, host: HostName, faults: readonly NetworkFault[]): string {
  const input: string[] = [];
  const output: string[] = [];
  const addr = (h: HostName) => t.hosts[h].address;
  for (const f of faults) {
    if (f.kind === 'isolate' && f.host === host) {
      input.push('iifname "eth0" drop');
      output.push('oifname "eth0" drop');
    } else if (f.kind === 'dark') {
      input.push(f.host === host ? 'iifname "eth0" drop' : `iifname "eth0" ip saddr ${addr(f.host)} drop`);
    } else if (f.kind === 'cut') {
      // Enforced at the sender, so the receiver's view stays untouched: a true one-way loss.
      if (f.from === host) output.push(`oifname "eth0" ip daddr ${addr(f.to)} drop`);
    } else if (f.kind === 'loss') {
      const pct = Math.max(0, Math.min(100, Math.round(f.percent)));
      // Each side drops its own outgoing share: loss in both directions, independently per packet.
      if (f.a === host) output.push(`oifname "eth0" ip daddr ${addr(f.b)} numgen random mod 100 < ${pct} drop`);
      if (f.b === host) output.push(`oifname "eth0" ip daddr ${addr(f.a)} numgen random mod 100 < ${pct} drop`);
    } else if (f.kind === 'isolate-ports' && f.host === host) {
      const ports = `{ ${f.ports.join(', ')} }`;
      input.push(`iifname "eth0" tcp dport ${ports} drop`, `iifname "eth0" tcp sport ${ports} drop`);
      output.push(`oifname "eth0" tcp dport ${ports} drop`, `oifname "eth0" tcp sport ${ports} drop`);
    } else if (f.kind === 'cut-port' && f.host === host) {
      // By the sending socket's owner, so the member beside the agent (another user) keeps its traffic.
      output.push(`meta skuid ${f.uid} tcp dport ${f.port} drop`);
    }
  }
  return tableScript([chain('input', 'input', input), chain('output', 'output', output)]);
}

const chain = (name: string, hook: string, rules: readonly string[]) =>
  `  chain ${name} {\n    type filter hook ${hook} priority 0; policy accept;\n${rules.map((r) => `    ${r}\n`).join('')}  }\n`;

/** One transaction: make sure the table exists (a stale one of a dead run included), flush it, declare it. */
const tableScript = (chains: readonly string[]) =>
  `table inet ${nftTable} {}\nflush table inet ${nftTable}\ntable inet ${nftTable} {\n${chains.join('')}}\n`;

/**
 * The nftables script of the router's table (pure, unit-tested): the `path-loss` faults, in its forward
 * chain, by the links a packet comes in on and goes out on. `numgen random` draws per packet, so the two
 * directions lose independently.
 */
export function routerNftScript(t: Topology, faults: readonly NetworkFault[]): string {
  const forward: string[] = [];
  for (const f of faults) {
    if (f.kind !== 'path-loss') continue;
    const pct = Math.max(0, Math.min(100, Math.round(f.percent)));
    const [a, b] = [t.hosts[f.a].routerDevice, t.hosts[f.b].routerDevice];
    for (const [from, to] of [[a, b], [b, a]] as const) {
      forward.push(`iifname "${from}" oifname "${to}" ${pct >= 100 ? '' : `numgen random mod 100 < ${pct} `}drop`);
    }
  }
  return tableScript([chain('forward', 'forward', forward)]);
}

/** One step of a flap schedule: the path between a and b goes down, or comes back, atMs after the start. */
export interface FlapEvent {
  readonly atMs: number;
  readonly a: HostName;
  readonly b: HostName;
  readonly down: boolean;
}

export interface FlapPlan {
  /** The same seed gives the same schedule (the bench logs it, so a run can be replayed). */
  readonly seed: number;
  readonly durationMs: number;
  /** How long each cut lasts, drawn uniformly from [min, max] ms. */
  readonly downMs: readonly [number, number];
  /** How long the path stays up between two cuts, drawn uniformly from [min, max] ms. */
  readonly upMs: readonly [number, number];
}

/** mulberry32: a small seeded generator, so a schedule is a pure function of its seed. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * Every path of `pairs` flapping on its own (pure, unit-tested): each starts up for a random part of one
 * up period, so the paths do not move in step, then alternates a cut of `downMs` and an up stretch of
 * `upMs`. Every cut ends by `durationMs`. Sorted by time, a path's own events in order.
 */
export function flapSchedule(pairs: ReadonlyArray<readonly [HostName, HostName]>, plan: FlapPlan): FlapEvent[] {
  const random = seededRandom(plan.seed);
  const between = ([min, max]: readonly [number, number]) => Math.round(min + random() * (max - min));
  const events: FlapEvent[] = [];
  for (const [a, b] of pairs) {
    let t = Math.round(random() * plan.upMs[1]);
    while (t < plan.durationMs) {
      const up = Math.min(plan.durationMs, t + between(plan.downMs));
      events.push({ atMs: t, a, b, down: true }, { atMs: up, a, b, down: false });
      t = up + between(plan.upMs);
    }
  }
  // Stable: a path's cut and its end keep their order even when both land on the same millisecond.
  return events.sort((x, y) => x.atMs - y.atMs);
}

export interface FaultRecord {
  readonly atMs: number;
  readonly what: string;
}

export class Faults {
  readonly #t: Topology;
  readonly #labDir: string;
  #network: NetworkFault[] = [];
  readonly #frozen = new Set<HostName>();
  readonly #stalled = new Map<string, PgServer>();
  readonly #clockShifted = new Set<HostName>();
  /** Every fault and heal, with its wall-clock time (for timelines). */
  readonly log: FaultRecord[] = [];

  constructor(t: Topology, labDir: string) {
    this.#t = t;
    this.#labDir = labDir;
  }

  #record(what: string): number {
    const atMs = Date.now();
    this.log.push({ atMs, what });
    return atMs;
  }

  get networkFaults(): readonly NetworkFault[] {
    return this.#network;
  }

  /**
   * Creates the (empty) table in every host namespace and in the router's. They go with the namespaces
   * (down(), or the next start's clean-up of a dead run's); each script flushes what a table held before.
   */
  async init(): Promise<void> {
    await this.#apply([...this.#t.hostNames, 'router']);
    for (const h of this.#t.hostNames) writeFileSync(this.clockFile(h), '+0\n');
  }

  async #apply(where: ReadonlyArray<HostName | 'router'>): Promise<void> {
    await Promise.all(where.map((h) => {
      const [ns, script] = h === 'router'
        ? [this.#t.router.ns, routerNftScript(this.#t, this.#network)]
        : [this.#t.hosts[h].ns, nftScript(this.#t, h, this.#network)];
      return mustRun('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: script, timeoutMs: 10_000 });
    }));
  }

  #touched(f: NetworkFault): Array<HostName | 'router'> {
    switch (f.kind) {
      case 'isolate':
        return [f.host];
      case 'dark':
        return [...this.#t.hostNames];
      case 'cut':
        return [f.from];
      case 'loss':
        return [f.a, f.b];
      case 'isolate-ports':
      case 'cut-port':
        return [f.host];
      case 'path-loss':
        return ['router'];
    }
  }

  /** Adds network faults; resolves (with the wall-clock time) once every rule is in force. */
  async network(...faults: NetworkFault[]): Promise<number> {
    this.#network = [...this.#network, ...faults];
    await this.#apply([...new Set(faults.flatMap((f) => this.#touched(f)))]);
    return this.#record(faults.map(describeNetworkFault).join(', '));
  }

  isolate(host: HostName): Promise<number> {
    return this.network({ kind: 'isolate', host });
  }

  /** Both directions between a and b. */
  partition(a: HostName, b: HostName): Promise<number> {
    return this.network({ kind: 'cut', from: a, to: b }, { kind: 'cut', from: b, to: a });
  }

  /** Removes the given faults (compared by value), or all of them. */
  async healNetwork(...faults: NetworkFault[]): Promise<number> {
    const key = (f: NetworkFault) => JSON.stringify(f);
    const removing = faults.length === 0 ? this.#network : faults;
    const gone = new Set(removing.map(key));
    const hosts = [...new Set(removing.flatMap((f) => this.#touched(f)))];
    this.#network = this.#network.filter((f) => !gone.has(key(f)));
    // A fault counts from when it is in force (after nft returns), a heal from just before: what the
    // hosts do after the heal must never look as if it came before it.
    const at = this.#record(`healed: ${removing.length === 0 ? 'nothing' : removing.map(describeNetworkFault).join(', ')}`);
    await this.#apply(hosts);
    return at;
  }

  // --- hosts -------------------------------------------------------------------------------------

  /** Freezes every process of the host (cgroup v1 freezer); resolves once the kernel reports FROZEN. */
  async freeze(host: HostName): Promise<number> {
    const state = `${freezerCgroupOf(host)}/freezer.state`;
    // The time is taken before the write: the host may stop (or, for thaw, act) the moment it lands.
    const at = this.#record(`${host} frozen`);
    writeFileSync(state, 'FROZEN');
    this.#frozen.add(host);
    for (let i = 0; i < 200 && readFileSync(state, 'utf8').trim() !== 'FROZEN'; i++) await new Promise((r) => setTimeout(r, 10));
    return at;
  }

  async thaw(host: HostName): Promise<number> {
    const at = this.#record(`${host} thawed`);
    writeFileSync(`${freezerCgroupOf(host)}/freezer.state`, 'THAWED');
    this.#frozen.delete(host);
    return at;
  }

  // --- postgres ----------------------------------------------------------------------------------

  /** kill -9 of PostgreSQL: the postmaster and all its processes. */
  killPostgres(s: PgServer): number {
    const at = this.#record(`kill -9 PostgreSQL on ${s.node}`);
    signalServer(s, 'SIGKILL');
    return at;
  }

  /** A stalled disk: every process of the server stops (SIGSTOP), postmaster first so it forks nothing new. */
  stallPostgres(s: PgServer): number {
    const at = this.#record(`disk stall on ${s.node} (PostgreSQL stopped)`);
    signalServer(s, 'SIGSTOP');
    this.#stalled.set(s.node, s);
    return at;
  }

  resumePostgres(s: PgServer): number {
    const at = this.#record(`disk stall on ${s.node} over`);
    signalServer(s, 'SIGCONT');
    this.#stalled.delete(s.node);
    return at;
  }

  // --- clocks ------------------------------------------------------------------------------------

  clockFile(host: HostName): string {
    return path.join(this.#labDir, 'hosts', host, 'faketime.rc');
  }

  /** Shifts the host's wall clock (as its agent/witness sees it) by e.g. "+1h" or "-1h" at once. */
  shiftClock(host: HostName, offset: string): number {
    writeFileSync(this.clockFile(host), `${offset}\n`);
    if (offset === '+0') this.#clockShifted.delete(host);
    else this.#clockShifted.add(host);
    return this.#record(`${host} wall clock ${offset}`);
  }

  // --- all ---------------------------------------------------------------------------------------

  /** Ends every fault that is still in force: network, frozen hosts, stalled servers, shifted clocks. */
  async healAll(): Promise<void> {
    for (const host of [...this.#frozen]) await this.thaw(host);
    for (const s of [...this.#stalled.values()]) this.resumePostgres(s);
    for (const host of [...this.#clockShifted]) this.shiftClock(host, '+0');
    if (this.#network.length > 0) await this.healNetwork();
  }
}
