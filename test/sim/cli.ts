// `npm run sim -- --seed N [--scenario NAME] [--quiet] [--default-timings]`: replay one simulated run
// with a readable transcript.
// `npm run sim -- --rewrite-golden` rewrites the golden transcripts under test/sim/testdata/.
import { rewriteGolden } from './golden.js';
import { parseCommandLine, usageError } from '../../scripts/cli-args.mjs';
import {
  randomBackendSchedule, randomFaultSchedule, randomThreeNodeSchedule, threeNodesOn, withForgedLeaseRequests,
} from './generate.js';
import { describeTimings } from './random-timings.js';
import { scenarios } from './scenarios.js';
import { describeFault, type Schedule } from './schedule.js';
import { runScheduleAsync } from './world.js';

const usage = `usage: npm run sim -- [--seed N] [--scenario NAME] [--quiet] [--default-timings] [--forged] [--list]
                      [--backend witness|etcd] [--nodes 2|3] [--rewrite-golden]
  --seed N          the seed of the random fault schedule (default 1); a quarter of the seeds run on
                    random valid timings and about half on etcd, as in the bulk run of npm test
  --backend B       run the schedule on the witness or on etcd, whichever the seed drew
  --nodes N         3: the seed's three-node schedule on etcd (as the bulk run draws for some etcd
                    seeds); 2: the seed's two-node schedule even where the bulk run draws three
  --default-timings run the seed's faults on the default timings (as the golden transcripts do)
  --forged          the seed's schedule with three forged lease requests on top (as forged.test.ts runs it)
  --scenario NAME   replay a named fault scenario (--list shows them) instead of a random schedule
  --quiet           no transcript, only the outcome
  --list            list the named scenarios
  --rewrite-golden  rewrite the golden transcripts in test/sim/testdata/ (after an intended change)`;

const { values } = parseCommandLine({
  usage,
  options: {
    seed: { type: 'string', default: '1' },
    scenario: { type: 'string' },
    quiet: { type: 'boolean', default: false },
    'default-timings': { type: 'boolean', default: false },
    forged: { type: 'boolean', default: false },
    list: { type: 'boolean', default: false },
    backend: { type: 'string' },
    nodes: { type: 'string' },
    'rewrite-golden': { type: 'boolean', default: false },
  },
});

if (values['rewrite-golden']) {
  const files = rewriteGolden();
  console.log(`rewrote ${files.length} golden transcripts in test/sim/testdata/; review them with git diff`);
  process.exit(0);
}

if (values.list) {
  for (const [name, sc] of Object.entries(scenarios)) console.log(`${name.padEnd(28)} ${sc.goal}`);
  process.exit(0);
}
const seed = Number(values.seed);
if (!Number.isSafeInteger(seed)) {
  usageError(usage, `--seed must be an integer (got ${values.seed})`);
}
if (values.backend !== undefined && values.backend !== 'witness' && values.backend !== 'etcd') {
  usageError(usage, `--backend must be witness or etcd (got ${values.backend})`);
}
if (values.nodes !== undefined && values.nodes !== '2' && values.nodes !== '3') {
  usageError(usage, `--nodes must be 2 or 3 (got ${values.nodes})`);
}
let schedule: Schedule;
if (values.scenario !== undefined) {
  const sc = scenarios[values.scenario];
  if (sc === undefined) {
    usageError(usage, `unknown scenario ${values.scenario}; try --list`);
  }
  console.log(`scenario ${values.scenario}: ${sc.goal}`);
  schedule = sc.schedule(seed);
} else {
  if (values.forged && values['default-timings']) usageError(usage, '--forged and --default-timings do not combine');
  if (values.forged) schedule = withForgedLeaseRequests(seed);
  else if (values.nodes === '3') schedule = randomThreeNodeSchedule(seed);
  else schedule = values['default-timings'] ? randomFaultSchedule(seed) : randomBackendSchedule(seed, values.nodes !== '2' && threeNodesOn());
}
if (values.backend !== undefined) schedule = { ...schedule, backend: values.backend };
const rates = JSON.stringify(schedule.clockRates);
console.log(`seed ${seed} on ${schedule.backend ?? 'witness'} with ${schedule.nodes ?? 2} nodes, ${schedule.replication} replication, clock rates ${rates}`);
if (schedule.timings !== undefined) console.log(describeTimings(schedule.timings));
const config = [
  ...(schedule.noFailover === undefined ? [] : [`noFailover ${schedule.noFailover.join(', ')}`]),
  ...(schedule.priority === undefined ? [] : [`priority ${JSON.stringify(schedule.priority)}`]),
  ...(schedule.degrade === undefined ? [] : [`degrade ${schedule.degrade}`]),
];
if (config.length > 0) console.log(config.join('; '));
for (const f of schedule.faults) console.log(`  at ${(f.at / 1000).toFixed(3)} s: ${describeFault(f)}`);
const r = await runScheduleAsync(schedule, { transcript: !values.quiet });
if (!values.quiet) for (const line of r.transcript) console.log(line);
const acked = r.acks.length;
const promotions = r.promotions.map((p) => `${p.node}@${(p.t / 1000).toFixed(2)}s(term ${p.term})`).join(', ') ||
  'none';
console.log(`\n${r.writesAttempted} writes attempted, ${acked} acknowledged; promotions: ${promotions}; ` +
  `final primary: ${r.finalPrimary ?? 'none'}`);
if (r.violations.length > 0) {
  console.log(`VIOLATIONS:\n  ${r.violations.join('\n  ')}`);
  process.exit(1);
}
console.log('no violations');
