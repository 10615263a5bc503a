// Imported first by main.ts, so it runs before any other module of the daemon: raises V8's tier-up
// budget for TurboFan 16-fold.
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
// only prints "unrecognized flag" and carries on with V8's default.
import { setFlagsFromString } from 'node:v8';

/** V8's default is 66 KiB of bytecode executed between tier-up checks (V8 11–12). */
export const agentInterruptBudget = 16 * 66 * 1024;

setFlagsFromString(`--interrupt-budget=${agentInterruptBudget}`);
