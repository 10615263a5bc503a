// The lab's machine resources: one network namespace per host plus a "vpc" router namespace, one
// veth link per host to the router (no shared L2), a freezer cgroup per host, and their removal.
//
//   client ──eth0═╗                      ╔═eth0── db-a      every host: one /24 address on eth0,
//   witness ─eth0═╣  pgvip-lab-vpc       ╠═eth0── db-b      default route via the router.
//                 ╚═ (router, proxy ARP) ╝
//                     198.18.0.1: EC2 API + IMDS
//
// The router forwards between the links and answers ARP for every address it can route (proxy
// ARP), like the VPC fabric answers for every address in a subnet. The VIP reaches a host only
// through a router route `VIP/32 dev <link>` programmed from the EC2 emulator's truth: a host that
// still has the VIP on its interface receives nothing once EC2 moved it elsewhere, as in AWS.
//
// Names are fixed (pgvip-lab-*), so one lab runs per machine at a time: a lock file holds the
// owner's pid, and resources left by an owner that died are removed before a new lab starts.
import { existsSync, readFileSync, readdirSync, rmdirSync, unlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { freezerCgroupOf, mustRun, run, runSync } from './exec.js';
import { isAlive } from '../fixtures/owned-dirs.js';
import { labPrefix, nsOf, type HostName, type Topology } from './topology.js';

const lockFile = '/run/pgvip-lab.lock';
const freezerRoot = '/sys/fs/cgroup/freezer';


/** Which of the lab's namespaces exist now (any pgvip-lab-* name, also a crashed run's). */
export function labNamespaces(): string[] {
  const r = runSync('ip', ['netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(labPrefix));
}

function labCgroups(): string[] {
  try {
    return readdirSync(freezerRoot)
      .filter((n) => n.startsWith(labPrefix))
      .map((n) => `${freezerRoot}/${n}`);
  } catch {
    return [];
  }
}

function pidsOfCgroup(dir: string): number[] {
  try {
    return readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function pidsOfNamespace(ns: string): number[] {
  return runSync('ip', ['netns', 'pids', ns]).stdout.split('\n').filter(Boolean).map(Number);
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Removes every lab namespace and cgroup, killing whatever runs in them (synchronous, so that it
 * can run from an exit hook). Frozen cgroups are thawed first: a frozen process cannot die.
 */
export function removeLabResourcesSync(): void {
  const cgroups = labCgroups();
  for (const dir of cgroups) {
    try {
      writeFileSync(`${dir}/freezer.state`, 'THAWED');
    } catch {
      // gone meanwhile
    }
  }
  const namespaces = labNamespaces();
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pids = [...cgroups.flatMap(pidsOfCgroup), ...namespaces.flatMap(pidsOfNamespace)];
    const alive = [...new Set(pids)].filter((p) => p !== process.pid && isAlive(p));
    if (alive.length === 0 || Date.now() > deadline) break;
    for (const pid of alive) {
      try {
        process.kill(pid, 'SIGCONT');
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
    sleepSync(50);
  }
  for (const ns of namespaces) runSync('ip', ['netns', 'del', ns]);
  for (const dir of cgroups) {
    for (let i = 0; i < 50 && existsSync(dir); i++) {
      try {
        rmdirSync(dir);
      } catch {
        sleepSync(50); // the last killed tasks are still leaving the cgroup
      }
    }
  }
}

/** The pid of a live process holding the lab lock (another lab run on this machine), or null. */
export function labLockOwner(): number | null {
  if (!existsSync(lockFile)) return null;
  const owner = Number(readFileSync(lockFile, 'utf8').trim());
  return Number.isInteger(owner) && owner !== process.pid && isAlive(owner) ? owner : null;
}

/**
 * Takes the machine-wide lab lock. A lock held by a live process is a lab in use: refuse. A lock
 * of a dead owner, or none while pgvip-lab-* resources exist, means a crashed run: clear it all.
 */
export function acquireLabLock(): void {
  const owner = labLockOwner();
  if (owner !== null) throw new Error(`another lab is running (pid ${owner}, lock ${lockFile}); only one lab fits on a machine (the namespace names are fixed)`);
  removeLabResourcesSync();
  writeFileSync(lockFile, `${process.pid}\n`);
}

export function releaseLabLock(): void {
  try {
    if (Number(readFileSync(lockFile, 'utf8').trim()) === process.pid) unlinkSync(lockFile);
  } catch {
    // not ours or already gone
  }
}

// --- building the topology ------------------------------------------------------------------------------

async function ip(args: readonly string[]): Promise<void> {
  await mustRun('ip', args, { timeoutMs: 10_000 });
}

async function sysctl(ns: string, settings: Readonly<Record<string, string | number>>): Promise<void> {
  const args = Object.entries(settings).map(([k, v]) => `${k}=${v}`);
  await mustRun('ip', ['netns', 'exec', ns, 'sysctl', '-qw', ...args], { timeoutMs: 10_000 });
}

async function addNamespace(ns: string): Promise<void> {
  await ip(['netns', 'add', ns]);
  await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  // IPv4 only: no router solicitations or DAD packets in the captures, nothing but 198.18.0.0/15.
  // rp_filter off: a VIP answered from the "wrong" link after a move must not be dropped silently
  // by the kernel, the lab wants to see it (the checkers do).
  await sysctl(ns, { 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1, 'net.ipv4.conf.all.rp_filter': 0, 'net.ipv4.conf.default.rp_filter': 0 });
}

function createCgroup(host: HostName): void {
  mkdirSync(freezerCgroupOf(host), { recursive: true });
}

/** Builds the namespaces, links, routes and cgroups of `t`. The VIP starts unroutable (blackhole). */
export async function createNetwork(t: Topology): Promise<void> {
  const vpc = t.router.ns;
  await addNamespace(vpc);
  await sysctl(vpc, { 'net.ipv4.ip_forward': 1 });
  await ip(['-n', vpc, 'addr', 'add', `${t.router.serviceAddress}/32`, 'dev', 'lo']);
  for (const name of t.hostNames) {
    const h = t.hosts[name];
    await addNamespace(h.ns);
    // Both ends are created in their namespaces at once: nothing of the lab ever exists in the
    // machine's own namespace, so no route or interface of the host machine changes.
    await ip(['-n', vpc, 'link', 'add', h.routerDevice, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns]);
    await ip(['-n', vpc, 'addr', 'add', `${h.gateway}/32`, 'dev', h.routerDevice]);
    await sysctl(vpc, { [`net.ipv4.conf.${h.routerDevice}.proxy_arp`]: 1, [`net.ipv4.conf.${h.routerDevice}.rp_filter`]: 0 });
    await ip(['-n', vpc, 'link', 'set', h.routerDevice, 'up']);
    await ip(['-n', vpc, 'route', 'add', `${h.address}/32`, 'dev', h.routerDevice]);
    await ip(['-n', h.ns, 'addr', 'add', `${h.address}/${h.prefixLength}`, 'dev', 'eth0']);
    await ip(['-n', h.ns, 'link', 'set', 'eth0', 'up']);
    await ip(['-n', h.ns, 'route', 'add', 'default', 'via', h.gateway, 'dev', 'eth0', 'onlink']);
    createCgroup(name);
  }
  await ip(['-n', vpc, 'route', 'replace', 'blackhole', `${t.vip.address}/32`]);
}

/** Removes the lab's namespaces and cgroups (killing what runs in them). */
export async function removeNetwork(): Promise<void> {
  removeLabResourcesSync();
  // Verify, and say what is left if anything is: a leftover namespace would break the next run.
  const left = (await run('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(labPrefix));
  if (left.length > 0) throw new Error(`lab namespaces left behind: ${left.join(', ')}`);
}

export { nsOf };
