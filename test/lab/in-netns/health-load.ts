// Runs INSIDE the client namespace (started by ../bench-agent.ts): hammers one agent's /health with
// `concurrency` keep-alive connections for `durationMs` and prints the latency summary as JSON.
import { Pool } from 'undici';

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
    const started = performance.now();
    try {
      const res = await pool.request({ method: 'GET', path: target.pathname, headersTimeout: 2000, bodyTimeout: 2000 });
      await res.body.text();
      if (res.statusCode === 200) latencies.push(performance.now() - started);
      else errors++;
    } catch {
      errors++;
    }
  }
}

await Promise.all(Array.from({ length: concurrency }, lane));
await pool.close();
latencies.sort((a, b) => a - b);
const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? null;
console.log(JSON.stringify({
  requests: latencies.length,
  errors,
  p50_ms: q(0.5),
  p99_ms: q(0.99),
  max_ms: latencies.at(-1) ?? null,
}));
