// `npm run demo -- --simulated`: a simulated three-node cluster (the real decision core, simulated
// PostgreSQL, EC2 and network) loses its primary in front of you. No root needed; the default demo
// (cli.ts) does the same with real processes in the network-namespace lab.
import { scenarios } from '../sim/scenarios.js';
import { describeFault } from '../sim/schedule.js';
import { runSchedule } from '../sim/world.js';
import { failoverTimeline, renderTimeline } from './timeline.js';

const FAULT_AT = 10_000;
const shows = [
  { name: 'row03-host-loss', title: 'The primary host (db-a) dies' },
  { name: 'row02-kill-pg', title: 'PostgreSQL on the primary is killed (kill -9), its agent stays up' },
  { name: 'row01-switchover', title: 'Planned switchover to db-b' },
];

console.log('pgvip demo — simulated cluster: db-a (primary), db-b (sync standby), witness; VIP on db-a.');
console.log('Every decision is made by the real pgvip core; PostgreSQL, EC2 and the network are simulated.');
console.log('(`sudo npm run demo` shows the same with real processes in the network-namespace lab.)\n');
let failed = false;
for (const show of shows) {
  const sc = scenarios[show.name]!;
  const schedule = sc.schedule(7);
  console.log(`=== ${show.title}`);
  for (const f of schedule.faults) console.log(`    at ${(f.at / 1000).toFixed(1)} s: ${describeFault(f)}`);
  const r = runSchedule(schedule, { transcript: true });
  const key = r.transcript.filter((l) => /FAULT|failure-detected|released|voted for|won term|handed|promoted to|VIP now routes|fenced \(|rewound|sync-degraded/.test(l) && !/notify (vote-granted|promoted|fenced|lease-released)/.test(l));
  for (const line of key.slice(0, 14)) console.log(`  ${line}`);
  console.log('\n  timeline (from the fault):');
  console.log(renderTimeline(failoverTimeline(r, FAULT_AT, 'db-b'), FAULT_AT));
  const lost = r.promotions.reduce((a, p) => a + p.lostWrites, 0);
  console.log(`\n  writes: ${r.writesAttempted} attempted, ${r.acks.length} acknowledged, ${lost} acknowledged writes lost; final primary ${r.finalPrimary}`);
  console.log(`  invariants: ${r.violations.length === 0 ? 'all held' : r.violations.join('; ')}\n`);
  if (r.violations.length > 0) failed = true;
}
process.exit(failed ? 1 : 0);
