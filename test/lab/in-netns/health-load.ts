// Runs INSIDE the client namespace (started by ../bench-agent.ts): hammers one agent's /health with
// `concurrency` keep-alive connections for `durationMs` and prints the latency summary as JSON.
import { Pool } from 'undici';
import { latencySummary, timedGet } from './health-get.js';

const [url, concurrencyText, durationText] = process.argv.slice(2);
const concurrency = Number(concurrencyText);
const durationMs = Number(durationText);
const target = new URL(url!);
const pool = new Pool(target.origin, { connections: concurrency, pipelining: 1 });
const latencies: number[] = [];
let errors = 0;
const deadline = performance.now() + durationMs;

async function lane(): Promise<void> {
  while (performance.now() < deadline) {
    const took = await timedGet(pool, target.pathname, performance.now());
    if (took === null) errors++;
    else latencies.push(took);
  }
}

await Promise.all(Array.from({ length: concurrency }, lane));
await pool.close();
console.log(latencySummary(latencies, { errors }));
