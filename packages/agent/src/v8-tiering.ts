// Imported first by main.ts, so it runs before any other module of the daemon: raises V8's tier-up
// thresholds for its optimising compilers (Maglev and TurboFan) 16-fold.
//
// Why: an idle agent runs the same few code paths a few dozen times a second (heartbeat, lease
// requests, status polls). With the default budget V8 keeps optimising those lukewarm functions
// (and re-optimising them after deoptimisations), which was ~10 % of the agent's CPU in perf; with a
// 16× budget only code that is really hot gets optimised — /health under a flood of requests still
// does, within its first second. Measured with `npm run bench:agent` (PGVIP_BENCH_NODE_ARGS tried
// the variants): CPU 2.0 % → 1.7 % of a core, /health p99 unchanged; `--no-opt` saved as much CPU
// but tripled /health latency under load.
//
// Set here rather than on the unit's ExecStart line because node refuses to start with a flag it
// does not know (a crash loop after a Node.js upgrade that dropped it), while setFlagsFromString
// only prints "unrecognized flag" and carries on with V8's default. That happened with Node 24 (V8
// 13.6): its tiering counts calls per function (--invocation-count-for-*) instead of bytes of bytecode
// (--interrupt-budget, V8 11–12, Node 20), and it adds Maglev, a mid tier Node 20 did not enable,
// which compiles lukewarm functions too. test/v8-tiering.test.ts notices such a change.
import { setFlagsFromString } from 'node:v8';

/** How much later than V8's default a function is optimised in the agent. */
export const tierUpScale = 16;

/** V8 13.6's defaults (Node 24): calls before Maglev and TurboFan, and loop iterations before on-stack replacement. */
export const v8TieringDefaults = {
  'invocation-count-for-maglev': 400,
  'invocation-count-for-maglev-osr': 100,
  'invocation-count-for-turbofan': 3000,
  'invocation-count-for-osr': 500,
} as const;

/** The flags the agent sets: each default × tierUpScale. */
export const agentTieringFlags = Object.entries(v8TieringDefaults).map(([flag, value]) => `--${flag}=${value * tierUpScale}`);

for (const flag of agentTieringFlags) setFlagsFromString(flag);
