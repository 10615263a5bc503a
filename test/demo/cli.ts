// `npm run demo` (as root): pgvip on real processes. Builds the network-namespace lab (three hosts, a
// client and a VPC router on this machine), shows writes flowing through the VIP, kills the primary
// host (frozen, its traffic dropped), prints the failover timeline from the daemons' own logs, brings
// the old primary back as a standby, checks that nothing was lost and nobody wrote twice, and tears
// everything down. `npm run demo -- --simulated` runs the simulator's version instead (no root).
// `--backend etcd` runs the same story with the cluster's quorum on the lab's three-member etcd
// (docs/etcd.md): the timeline then shows etcd's own steps, the old leader key gone and the new one taken.
// `--backend etcd --nodes 3` adds a third database host, db-c (docs/design.md, "More than one standby"):
// the two standbys publish their final positions in etcd and the one that ranks first takes over.
import { parseCommandLine, usageError } from '../../scripts/cli-args.mjs';
import { ensureSystemDeps } from '../../scripts/system-deps.mjs';
import { acknowledged, firstAckAfter } from '../lab/checkers.js';
import { isRoot, labBackends, startLab, type Lab, type LabBackend } from '../lab/lab.js';
import { renderMilestones } from '../lab/logs.js';
import type { DbNode, LabNodeCount } from '../lab/topology.js';
import { hold, waitFor } from '../lab/wait.js';

const usage = `usage: npm run demo [-- --simulated | --backend witness|etcd [--nodes 2|3]]
  (as root) a real three-host cluster in network namespaces loses its primary: the failover timeline,
  then checks that no acknowledged write was lost. Works from any clone (the daemons run from a copy).
  --backend     the cluster's quorum: witness (default) or etcd (a three-member etcd on the same hosts)
  --nodes       database nodes: 2 (default) or 3 (db-a, db-b, db-c; needs --backend etcd)
  --simulated   the simulator's version of the same story (no root needed)`;
const { values } = parseCommandLine({
  usage,
  options: { simulated: { type: 'boolean' }, backend: { type: 'string', default: 'witness' }, nodes: { type: 'string', default: '2' } },
});
const backend = values.backend as LabBackend;
if (!labBackends.includes(backend)) usageError(usage, `--backend must be ${labBackends.join(' or ')} (got ${values.backend})`);
const nodes = Number(values.nodes) as LabNodeCount;
if (nodes !== 2 && nodes !== 3) usageError(usage, `--nodes must be 2 or 3 (got ${values.nodes})`);
if (nodes === 3 && backend !== 'etcd') usageError(usage, '--nodes 3 needs --backend etcd: the witness backend runs two database nodes (docs/design.md, "More than one standby")');

if (values.simulated === true) {
  await import('./simulated.js');
} else {
  await realDemo();
}

function secondsSince(t0: number): string {
  return `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s`;
}

/** One line about the writes of the last second: who acknowledges, how many failed. */
function writesLine(lab: Lab): string {
  const now = Date.now();
  const recent = lab.writer!.since(now - 1_000, now);
  const ok = recent.filter((r) => r.outcome === 'ok');
  const servers = [...new Set(ok.map((r) => `${r.server} (timeline ${r.timeline})`))].join(', ') || 'nobody';
  const lastAck = acknowledged(lab.writer!.records).at(-1);
  const ago = lastAck === undefined ? 'never' : `${((now - lastAck.doneAt) / 1000).toFixed(1)} s ago`;
  return `writes/s: ${String(ok.length).padStart(3)} ok, ${String(recent.length - ok.length).padStart(3)} failed or unknown · acknowledged by ${servers} · last ack ${ago}`;
}

/** etcd's own view (backend etcd): the leader key, the term and the synchronous standby it names. */
async function etcdLine(lab: Lab): Promise<string> {
  const k = await lab.etcdKeys();
  if (k === null) return 'etcd: no answer (no member with quorum)';
  const leader = k.leader === null ? 'no leader key' : `leader key ${k.leader.node} (term ${k.leader.term})`;
  const sync = nodes === 3
    ? `sync claim ${k.sync === null ? 'none' : `ANY ${k.sync.k ?? 0} (${(k.sync.members ?? []).join(', ')})`}`
    : `sync standby ${k.sync?.standby ?? 'none'}`;
  return `etcd: ${leader} · term record ${k.term === null ? 'none' : `${k.term.term} for ${k.term.primary}`} · ${sync}`;
}

async function rolesLine(lab: Lab): Promise<string> {
  const all = lab.topology.dbNodes;
  const statusesOf = Promise.all(all.map((n) => lab.agentStatus(n, 800)));
  const [statuses, vip] = await Promise.all([statusesOf, lab.emulator.vipNode()]);
  const show = (n: DbNode, s: Awaited<ReturnType<Lab['agentStatus']>>) =>
    `${n}: ${s === null ? 'no answer' : `${s.role}${s.withdrawn === true ? ', withdrawn' : ''} (term ${s.term})`}`;
  return `${all.map((n, i) => show(n, statuses[i]!)).join(' · ')} · VIP → ${vip ?? 'nowhere'}`;
}

async function watch(lab: Lab, t0: number, until: () => boolean, maxMs: number): Promise<void> {
  const end = Date.now() + maxMs;
  while (!until() && Date.now() < end) {
    console.log(`  [${secondsSince(t0)}] ${writesLine(lab)}`);
    console.log(`             ${await rolesLine(lab)}`);
    await hold(1_000);
  }
}

async function realDemo(): Promise<void> {
  if (!isRoot()) {
    console.error(
      'The pgvip demo builds a small lab of real hosts on this machine (network namespaces, nftables,\n' +
        'cgroups, PostgreSQL 15 run as the postgres user) and needs root for that. Run it with:\n\n' +
        '  sudo npm run demo\n\n' +
        'or, without root, the simulated version:  npm run demo -- --simulated',
    );
    process.exit(1);
  }
  ensureSystemDeps(['test/lab']);
  const t0 = Date.now();
  const onEtcd = backend === 'etcd';
  const daemons = onEtcd
    ? 'real pgvip agents with their quorum on a real three-member etcd (the witness only observes)'
    : 'real pgvip agents and witness';
  console.log(`pgvip demo — real PostgreSQL 15, ${daemons}, an EC2 emulator, and a VPC made`);
  console.log('of network namespaces (198.18.0.0/15 only; nothing leaves this machine).\n');
  console.log('== building the lab');
  const lab = await startLab({ backend, nodes, progress: (l) => console.log(`  [${secondsSince(t0)}] ${l}`), keepDir: true });
  let failed = false;
  try {
    const t = lab.topology;
    const { primary, standby, standbys, term } = lab.roles!;
    const p = primary as DbNode;
    const hosts = [...t.dbNodes, 'witness', 'client'] as const;
    console.log(`\n  ${hosts.map((h) => `${h} ${t.hosts[h].address}`).join(' · ')}`);
    const syncLine = nodes === 3 ? `standbys ${standbys.join(' and ')} (synchronous: ANY 1 of them)` : `synchronous standby ${standby}`;
    console.log(`  VIP ${t.vip.address}: primary ${p} (term ${term}), ${syncLine}; logs and configs in ${lab.dir}`);
    if (onEtcd) console.log(`  etcd members on db-a, db-b and the witness host (${lab.etcd!.endpoints.join(', ')}); ${await etcdLine(lab)}`);
    console.log('');

    console.log('== 1. writes flow through the VIP (the writer probe in the client namespace, every 20 ms)');
    await watch(lab, t0, () => false, 4_000);

    console.log(`\n== 2. the primary host ${p} dies: all its processes frozen, all its traffic dropped`);
    const faultAt = await lab.faults.isolate(p);
    await lab.faults.freeze(p);
    // Two nodes: the standby takes over. Three: whichever standby ranks first by its final position.
    const takeover = () => firstAckAfter(lab.writer!.records, faultAt, { notServer: p });
    await watch(lab, t0, () => takeover() !== undefined, 60_000);
    const s = (await waitFor('a standby to take over', 60_000, async () => takeover())).server as DbNode;
    await watch(lab, t0, () => false, 2_000);
    if (nodes === 3) {
      const positions = lab.etcdWatch!.since(faultAt, 'position').filter((e) => e.type === 'put');
      console.log(`\n  final positions the standbys published in etcd (the election ranks them: timeline, WAL, priority):`);
      for (const e of positions) console.log(`  +${String(e.atMs - faultAt).padStart(6)} ms  ${e.node}: timeline ${String(e.value?.timeline)}, WAL flushed to ${String(e.value?.flushLsn)}`);
      console.log(`  ${s} took over`);
    }
    const sources = onEtcd ? 'the agents\' logs, etcd\'s own key changes (a watch)' : 'the agents\' and witness\'s logs';
    console.log(`\n  failover timeline (ms after the fault; from ${sources}, the router and the writer):`);
    // The old primary's fence and rejoin come when it is back (part 3): it is frozen until then.
    console.log(renderMilestones(lab.timeline(faultAt, p, s).filter((m) => !/rejoined|fenced/.test(m.label)), faultAt));

    console.log(`\n== 3. ${p} comes back: it must not accept a single write, and rejoins as a standby (pg_rewind)`);
    const backAt = await lab.faults.thaw(p);
    await lab.faults.healNetwork();
    const rejoined = await waitFor(`${p} to rejoin`, 120_000, async () => lab.logOf(p).find((l) => l.atMs >= backAt && l.event === 'rejoined'));
    const fenced = lab.logOf(p).find((l) => l.atMs >= backAt && l.event === 'fenced');
    if (fenced) console.log(`  +${String(fenced.atMs - backAt).padStart(6)} ms  ${p}: ${fenced.msg}`);
    console.log(`  +${String(rejoined.atMs - backAt).padStart(6)} ms  ${p}: ${rejoined.msg}`);

    console.log('\n== 4. checks');
    const report = await lab.checkSince(faultAt, 120_000);
    const lateAcks = acknowledged(lab.writer!.since(faultAt)).filter((r) => r.server === p);
    console.log(`  writes since the fault: ${report.writes.ok} acknowledged, ${report.writes.failed} failed, ${report.writes.unknown} unknown outcome`);
    console.log(`  longest time without an acknowledged write: ${report.gap.gapMs} ms`);
    console.log(`  acknowledged writes missing from the new primary: ${report.lost.length}`);
    console.log(`  overlapping writers (two servers acknowledging at once): ${report.overlap.writes}`);
    console.log(`  writes acknowledged by ${p} after the fault: ${lateAcks.length}`);
    const others = report.final.standbys.join(' and ');
    console.log(`  final state: ${report.final.primary} primary (term ${report.final.term}) with the VIP, ${others} streaming synchronous ${report.final.standbys.length > 1 ? 'standbys' : 'standby'}`);
    console.log(`  ${await rolesLine(lab)}`);
    if (onEtcd) console.log(`  ${await etcdLine(lab)}`);
    failed = report.lost.length > 0 || report.overlap.writes > 0;
    if (failed) console.log('\n  CHECKS FAILED: see the logs above');
  } catch (err) {
    failed = true;
    lab.markFailed();
    console.error(`\ndemo failed: ${(err as Error).message}`);
  } finally {
    console.log('\n== tearing down (namespaces, processes, cgroups, nftables tables)');
    await lab.down().catch((err: unknown) => console.error(`teardown: ${(err as Error).message}`));
    console.log(`  done in ${secondsSince(t0)}; the logs stay in ${lab.dir} until the next lab run clears them`);
  }
  process.exit(failed ? 1 : 0);
}
