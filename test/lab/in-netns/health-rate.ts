// Runs INSIDE the client namespace (started by ../bench-agent.ts): polls one agent's /health at a fixed
// rate — `rate` requests a second in all, spread over `connections` keep-alive connections, each
// request sent at its turn whether or not the others have answered — for `durationMs`, and prints
// the latency summary as JSON.
//
// Why beside health-load.ts: that one keeps `concurrency` requests in flight back to back, so it
// measures the agent at the limit of one core, and each request also waits behind the other 15
// (and behind the load generator, which needs a core of its own). A load balancer or a monitoring
// system polls a few times a second; at a fixed rate well below the limit, a request's latency is
// the agent's own answer time plus whatever else delays it (GC pauses, the agent's own work,
// other processes on the machine).
import { Pool } from 'undici';
import { latencySummary, timedGet } from './health-get.js';

const [url, connectionsText, rateText, durationText] = process.argv.slice(2);
const connections = Number(connectionsText);
const rate = Number(rateText);
const durationMs = Number(durationText);
const target = new URL(url!);
const pool = new Pool(target.origin, { connections, pipelining: 1 });
const latencies: number[] = [];
let errors = 0;
/** Requests sent more than 1 ms after their turn (the generator itself was late: a loaded machine). */
let late = 0;
const started = performance.now() + 100;
const total = Math.floor((rate * durationMs) / 1000);

async function lane(first: number): Promise<void> {
  for (let i = first; i < total; i += connections) {
    const turn = started + (i * 1000) / rate;
    const wait = turn - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const sent = performance.now();
    if (sent - turn > 1) late++;
    const took = await timedGet(pool, target.pathname, sent);
    if (took === null) errors++;
    else latencies.push(took);
  }
}

await Promise.all(Array.from({ length: connections }, (_, k) => lane(k)));
await pool.close();
console.log(latencySummary(latencies, { errors, late }));
